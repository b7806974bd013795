"""`synthswap study`: the minimum-data experiment grid and its report."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from synthswap.cache import PIPELINE_VERSION
from synthswap.cli import summary
from synthswap.cli.options import add_flags, fail, from_args
from synthswap.media import MediaError, probe_video
from synthswap.options import OptionError
from synthswap.run import PIPELINE_ERRORS
from synthswap.pretrained import SHIPPED_NAME, resolve_model
from synthswap.study.grid import Study, StudyOptions
from synthswap.study.ledger import other_pipelines, read_ledger
from synthswap.study.people import Pair, PeopleOptions, PeopleStudy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help=summary("study"),
        description=(
            "From a subject video and a destination video, build training sets from the same data (all real "
            "frames; k real photos; k photos + GAN-synthetic; k photos + warp-synthetic; k photos + synthetic from "
            "a generic prior if --generic-gan is given), train every swap model with the same step budget and "
            "seed, convert the held-out end of the destination video, evaluate, and write report.md and "
            "report.html with the gap-recovery ratio R. Splits are by time. Every stage is cached: rerun the "
            "same command to resume; finished conditions are not retrained."
        ),
        epilog="examples:\n"
               "  synthswap study --subject d6.mp4 --dest d9.mp4 --out study --k 5,20 --swap-steps 1500\n"
               "  synthswap study --pair d9.mp4 d6.mp4 --pair d3.mp4 d10.mp4 --k 1,2,3,5 --swap-steps 400 \\\n"
               "      --out runs/people --ledger docs/study/ledger.csv --resume   # across people, resumable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--subject", metavar="VIDEO", help="video of the subject (many frames)")
    p.add_argument("--dest", metavar="VIDEO", help="destination video")
    p.add_argument("--pair", action="append", nargs=2, metavar=("SUBJECT", "DEST"),
                   help="the study across people instead: a subject video and a destination video of another "
                        "person; repeat for each pair. Every cell (pair, seed, k, condition) is one line of the "
                        "--ledger the moment it ends; the GAN conditions use the shipped prior unless --gan is given")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder (with --pair: the work folder, one "
                                                                "study folder per pair and seed)")
    p.add_argument("--ledger", metavar="CSV", help="with --pair: the results ledger to add to (default: "
                                                   "OUT/ledger.csv); its summary is written beside it")
    p.add_argument("--resume", action="store_true", help="with --pair: run only the cells the ledger lacks "
                                                          "(failed ones again)")
    p.add_argument("--report-only", action="store_true",
                   help="with --pair: rewrite the ledger's summary, its plots and each study folder's frame grid "
                        "(conditions.png) from the finished cells; train nothing (safe while the study runs)")
    add_flags(p, StudyOptions)
    add_flags(p, PeopleOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.pair:
        if args.subject or args.dest:
            return fail("give --subject and --dest (one pair) or --pair (the study across people), not both")
        return run_people(args)
    if args.report_only:
        return fail("--report-only reads a study across people's ledger: give --pair")
    if not (args.subject and args.dest):
        return fail("give --subject and --dest, or one --pair or more")
    opts = from_args(StudyOptions, args, subject_video=args.subject, dest_video=args.dest, out=args.out)
    try:
        opts.validate()  # the same check Study() makes, before any video is read
    except OptionError as exc:
        return fail(str(exc))
    if Path(args.out).exists() and not Path(args.out).is_dir():
        return fail(f"--out {args.out}: is a file; the study needs a folder", 1)
    for video in (args.subject, args.dest):  # an unreadable one fails now, not after the other's extraction
        try:
            probe_video(video)
        except MediaError as exc:
            return fail(str(exc), 1)
    try:
        Study(opts).run()
    except PIPELINE_ERRORS as exc:
        return fail(str(exc), 1)
    print(f"wrote {args.out}/report.md and {args.out}/report.html")
    return 0


def run_people(args: argparse.Namespace) -> int:
    pairs = [Pair(subject, dest) for subject, dest in args.pair]
    grid = from_args(StudyOptions, args, subject_video=pairs[0].subject, dest_video=pairs[0].dest, out=args.out)
    people = from_args(PeopleOptions, args)
    try:
        grid.validate()
    except OptionError as exc:
        return fail(str(exc))
    if len({p.name for p in pairs}) < len(pairs):
        return fail("two --pair have the same names (a pair is named by its videos' file names)")
    ledger = Path(args.ledger or Path(args.out) / "ledger.csv")
    try:
        rows = read_ledger(ledger)
    except (ValueError, OSError) as exc:
        return fail(str(exc), 1)
    if args.report_only:
        if not rows:
            return fail(f"--ledger {ledger}: no finished cell to report yet", 1)
        study = PeopleStudy(pairs, grid, people, ledger, Path(args.out))
        print("wrote " + ", ".join(str(path) for path in study.write_report()))
        return 0
    if rows and not args.resume:
        return fail(f"--ledger {ledger} already holds {len(rows)} cells: add --resume to run the ones it lacks, "
                    f"or name another ledger")
    older = other_pipelines(rows, PIPELINE_VERSION)
    if older:  # one ledger, one recipe: cells of another pipeline would be compared with these as equals
        made = ", ".join(f"{n} by version {v}" for v, n in sorted(older.items()))
        return fail(f"--ledger {ledger}: {made} of synthswap's pipeline, and this synthswap is version "
                    f"{PIPELINE_VERSION}, whose cells would not compare with them; move the ledger (and its "
                    f"summary) aside and start a new one, or run the synthswap that made it")
    for pair in pairs:
        for video in (pair.subject, pair.dest):
            try:
                probe_video(video)
            except MediaError as exc:
                return fail(str(exc), 1)
    if grid.gan is None:  # run's default prior: a personal one per pair would cost its minutes each time
        grid = replace(grid, gan=str(resolve_model(SHIPPED_NAME, "gan")))
    study = PeopleStudy(pairs, grid, people, ledger, Path(args.out))
    try:
        failures = study.run()
    except PIPELINE_ERRORS as exc:
        return fail(str(exc), 1)
    print(f"ledger {ledger}; summary {study.summary_path()}"
          + (f"; {failures} cells failed (run again with --resume)" if failures else ""))
    return 1 if failures else 0
