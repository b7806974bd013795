"""The `synthswap` command: one subcommand per stage, each in its own module here.

Each module defines `register(subparsers)`, which adds its parser and sets `func` to a
function taking the parsed args and returning an exit code. Parsing, calling the stage
function and printing the summary happen here; the work happens in the stage modules.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from synthswap import __version__

# Subcommand modules, in the order `--help` lists them.
COMMAND_MODULES = ["run", "demo", "extract", "gan", "synth", "swap", "pretrain", "evaluate", "study", "verify",
                   "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthswap",
        description="Face-swap videos from a few photos of a person, with GAN-synthesised training data.",
        epilog="Run `synthswap COMMAND --help` for each stage's options.",
    )
    parser.add_argument("--version", action="version", version=f"synthswap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"synthswap.cli.{name}").register(sub)
    return parser


def quiet_native_logs() -> None:
    """MediaPipe/TFLite print C++ INFO lines to stderr; users need our messages, not theirs."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    quiet_native_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (a closed terminal, `kill`, a service stop) is handled as Ctrl-C: temporary files go.
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # StageInterrupted says what was saved and how to resume
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame) -> None:  # noqa: ARG001 - signal API
    raise KeyboardInterrupt("terminated (SIGTERM)")


if __name__ == "__main__":
    sys.exit(main())
