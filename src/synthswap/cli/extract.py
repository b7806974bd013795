"""`synthswap extract`: photos and videos to an aligned faceset."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import asdict, replace

from synthswap.cli import summary
from synthswap.cli.options import add_common, add_flags, from_args
from synthswap.extract import ExtractError, ExtractOptions, UsageError, extract
from synthswap.faces.choice import LARGEST
from synthswap.faceset import FacesetError
from synthswap.media import MediaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help=summary("extract"),
        description=(
            "Find the subject's face in every image and video frame, align it to the canonical template, "
            "and write crops, masks and a manifest (landmarks, expression, head pose, sharpness, identity "
            "embedding, source frame and the frame-to-crop affine) to a faceset folder. Running again on the "
            "same folder adds only new faces, so extraction can be resumed or extended."
        ),
        epilog="example: synthswap extract photos/ clip.mp4 --out work/subject --every-n 2",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders of images/videos (searched recursively), or videos "
                        "(mp4, mov, mkv, avi, flv, mpg, webm)")
    p.add_argument("--out", required=True, metavar="FACESET", help="faceset folder to create or extend")
    p.add_argument("--reference", metavar="PHOTO", help="the same as --face PHOTO (kept for older scripts)")
    add_flags(p, ExtractOptions)
    add_common(p, device=False, seed=False, threads=False)
    p.set_defaults(func=run)


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001 - signal API
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # Ctrl-C and SIGTERM both unwind through the faceset writer, which flushes the manifest.
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        options = from_args(ExtractOptions, args)
        if args.reference is not None:
            if options.face != LARGEST:
                raise UsageError("give --face or --reference (the same as --face PHOTO), not both")
            options = replace(options, face=args.reference)
        summary = extract(args.inputs, args.out, **asdict(options), progress=args.progress)
    except (ExtractError, MediaError, FacesetError, OSError) as exc:  # OSError: a full disk, a folder gone read-only
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    print(summary.text())
    return 1 if summary.failed_inputs else 0
