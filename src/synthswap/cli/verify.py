"""`synthswap verify FILE...`: does a file say it was made by synthswap, and how?"""

from __future__ import annotations

import argparse
import json

from synthswap.cli import summary
from synthswap.cli.options import fail, positive_int
from synthswap.media import MediaError
from synthswap.provenance.verify import verify_file

EPILOG = """\
layers:
  metadata   container tags (MP4/MOV/MKV) or PNG text: synthetic=true, tool, version, date, model hashes
  watermark  an invisible mark in the pixels (synthswap marker + run id); survives re-encoding,
             downscaling, cropping and brightness changes, where the other two are stripped
  manifest   a signed C2PA manifest (MP4/MOV): created by synthswap, AI-generated, the destination
             video as ingredient; a changed file reads as invalid

exit status: 0 every file is marked, 1 some file is not, 2 a file could not be read
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help=summary("verify"),
                       description="For each file: which provenance layers it carries, the watermark's payload and "
                                   "confidence, the manifest's signature status, and a one-line verdict.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="videos or images to check")
    p.add_argument("--frames", type=positive_int, default=120,
                   help="video frames read for the watermark, spread over the video (default 120)")
    p.add_argument("--key-dir", metavar="DIR",
                   help="the signing key folder to recognise as this machine's (default: $SYNTHSWAP_KEY_DIR or "
                        "~/.config/synthswap/signing)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    code = 0
    for path in args.files:
        try:
            result = verify_file(path, max_frames=args.frames, key_dir=args.key_dir)
        except MediaError as exc:
            fail(str(exc))
            code = 2
            continue
        print(json.dumps(result.to_dict()) if args.json else "\n".join(result.lines()), flush=True)
        if not result.marked and code == 0:
            code = 1
    return code
