"""The `synthswap` command: one subcommand per stage, each in its own module here.

Each module defines `register(subparsers)`, which adds its parsers (their one-line help is
`COMMANDS`' entry) and sets `func` to a function taking the parsed args and returning an exit
code. Parsing, checking the generated flags' values, calling the stage function and printing
the summary happen here; the work happens in the library's modules.

Only the module of the command given is imported (`synthswap --help` loads no torch).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from synthswap import __version__, quiet_native_logs  # noqa: F401 - quiet_native_logs re-exported

# command -> (module under synthswap.cli that registers it, one-line help), in the order `--help` lists them.
COMMANDS = {
    "run": ("run", "the whole job: extract, GAN prior, invert, synthesise, train the swap, convert, evaluate"),
    "demo": ("demo", "run the whole job on built-in public-domain portraits (no data needed)"),
    "extract": ("extract", "detect, align and measure faces from photos, folders and videos into a faceset"),
    "gan": ("gan", "train and use the StyleGAN2 face prior"),
    "synthesize": ("synth", "synthesise many images of the subject with varied expressions"),
    "coverage": ("synth", "how much of a destination's expressions a training faceset covers"),
    "swap": ("swap", "train the face-swap model and convert videos with it"),
    "pretrain": ("pretrain", "pretrain the swap model on a face corpus (DeepFaceLab's pretrain mode)"),
    "export-weights": ("pretrain", "write the fp16 copies of a pretrained swap model and GAN prior"),
    "evaluate": ("evaluate", "measure a swapped video: identity, leakage, expression and pose error, FID/KID, jitter"),
    "study": ("study", "how few real images are enough? train swaps on real-k, +GAN and +warp data and compare"),
    "verify": ("verify", "check files for synthswap's provenance marks (metadata, watermark, manifest)"),
    "serve": ("serve", "a local web app: submit jobs, follow their stages, previews and progress, get the results"),
    "enhance": ("enhance", "restore the detail of small swapped faces, keeping the identity"),
}


def summary(command: str) -> str:
    """The one-line help of `command` (what the modules' parsers and `--help`'s list show)."""
    return COMMANDS[command][1]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `command`, only that command's module is imported and registered (the
    others are listed by name and help), which keeps `synthswap --help` and each command quick."""
    parser = argparse.ArgumentParser(
        prog="synthswap",
        description="Face-swap videos from a few photos of a person, with GAN-synthesised training data.",
        epilog="Run `synthswap COMMAND --help` for each stage's options.",
    )
    parser.add_argument("--version", action="version", version=f"synthswap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    loaded: set[str] = set()
    for name, (module, text) in COMMANDS.items():
        if command is None or COMMANDS.get(command, ("",))[0] == module:
            if module not in loaded:
                importlib.import_module(f"synthswap.cli.{module}").register(sub)
                loaded.add(module)
        else:
            sub.add_parser(name, help=text)
    return parser


def main(argv: list[str] | None = None) -> int:
    from synthswap.cli.options import apply_threads, check_flags, fail

    quiet_native_logs()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    problem = check_flags(args)  # the generated flags' bounds and choices, as the web form checks them
    if problem is not None:
        return fail(problem)
    apply_threads(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # StageInterrupted says what was saved and how to resume
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
