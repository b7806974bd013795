"""`synthswap verify FILE...`: does a file say it was made by synthswap, and how?"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import add_flags, fail
from synthswap.media import MediaError
from synthswap.options import option
from synthswap.provenance import watermark
from synthswap.provenance.verify import verify_file

EPILOG = """\
layers:
  metadata   container tags (MP4/MOV/MKV) or PNG text: synthetic=true, tool, version, date, model hashes
  watermark  an invisible mark in the pixels (synthswap marker + run id); survives re-encoding,
             mirroring, small rotations, resizing, cropping and brightness changes, where the other two
             are stripped
  bound      with --manifests DIR: the manifest under DIR whose soft binding names this run id
  manifest   a signed C2PA manifest (MP4/MOV): created by synthswap, AI-generated, the destination
             video as ingredient; a changed file reads as invalid

exit status: 0 every file is marked, 1 some file is not, 2 a file could not be read
"""


@dataclass(kw_only=True)
class VerifyOptions:
    """`verify`'s settings (the files, --key-dir and --manifests are paths; --json is the output's form)."""

    frames: int = option(120, "video frames read for the watermark, spread over the video (a picture smaller than "
                              f"480 x 480 reads more, up to as many pixels, at most {watermark.MAX_SEARCH_FRAMES:,})",
                         minimum=1)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help=summary("verify"),
                       description="For each file: which provenance layers it carries, the watermark's payload and "
                                   "confidence, the manifest's signature status, and a one-line verdict.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="videos or images to check")
    add_flags(p, VerifyOptions)
    p.add_argument("--key-dir", metavar="DIR",
                   help="the signing key folder to recognise as this machine's (default: $SYNTHSWAP_KEY_DIR or "
                        "~/.config/synthswap/signing)")
    p.add_argument("--manifests", metavar="DIR",
                   help="also find, among the files under DIR (e.g. run's work folders), the signed manifest that binds "
                        "this file's watermark (its run id): where a copy stripped of its manifest comes from")
    p.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    code = 0
    if args.manifests is not None and not Path(args.manifests).is_dir():
        fail(f"--manifests {args.manifests}: not a folder")
        return 2
    for path in args.files:
        try:
            result = verify_file(path, max_frames=args.frames, key_dir=args.key_dir, manifests=args.manifests)
        except MediaError as exc:
            fail(str(exc))
            code = 2
            continue
        print(json.dumps(result.to_dict()) if args.json else "\n".join(result.lines()), flush=True)
        if not result.marked and code == 0:
            code = 1
    return code
