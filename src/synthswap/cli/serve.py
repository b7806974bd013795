"""`synthswap serve`: the local web app (job queue, live progress, previews, results)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import add_common, fail, positive_int
from synthswap.locking import LockError, locked_output

TOKEN_ENV = "SYNTHSWAP_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help=summary("serve"),
        description=(
            "Serve a web page for `synthswap run` jobs: upload (or pick) the subject's photos and a destination "
            "video, choose the settings, and follow the queued jobs' stages, training progress and previews; "
            "the output video, its report and downloads appear when a job is done. Jobs are kept in DATA "
            "(SQLite + one folder per job) and a job cut off by a restart resumes from its last finished stage. "
            "Binds to 127.0.0.1: another address needs --allow-remote, and then every request needs a token."
        ),
        epilog="example: synthswap serve --data ~/synthswap_data   (then open http://127.0.0.1:7860/)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--data", default="synthswap_data", metavar="DIR",
                   help="where jobs, uploads and results are kept (default: ./synthswap_data)")
    p.add_argument("--media", metavar="DIR", default=None,
                   help="a folder whose photos and videos the page may pick instead of uploading them")
    p.add_argument("--max-upload-mb", type=positive_int, default=1024, metavar="MB",
                   help="largest file the page accepts, in MB (default: 1024)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than this machine; every request then needs the printed token")
    p.add_argument("--token", default=None,
                   help=f"the token remote clients must give (default: ${TOKEN_ENV}, else a random one)")
    add_common(p, seed=False, quiet=False)
    p.set_defaults(func=main)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    # Imported here: the server's stack is only needed by this command.
    import uvicorn

    from synthswap.serve.app import Settings, create_app

    if not 0 < args.port < 65536:
        return fail(f"--port {args.port}: must be between 1 and 65535")
    local = is_loopback(args.host)
    if not local and not args.allow_remote:
        return fail(f"--host {args.host} would let other machines reach this server; add --allow-remote "
                    f"(every request then needs a token), or keep the default 127.0.0.1")
    token = None
    if not local:
        token = args.token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    if args.media and not Path(args.media).is_dir():
        return fail(f"--media {args.media}: not a folder")
    settings = Settings(data=Path(args.data).resolve(), max_upload_bytes=args.max_upload_mb * 2**20,
                        media=Path(args.media) if args.media else None, device=args.device,
                        threads=args.threads, token=token,
                        allowed_hosts=("127.0.0.1", "localhost", "::1") if local else None)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    link = f"http://{'[' + shown + ']' if ':' in shown else shown}:{args.port}/"
    try:
        # One server per data directory: two would both take the same queued job.
        with locked_output(settings.data, "data directory"):
            print(f"synthswap serve: {link}{'?token=' + token if token else ''}   (data: {settings.data})",
                  flush=True)
            uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                        access_log=False)
    except LockError as exc:
        return fail(str(exc), 1)  # another `synthswap serve` uses this data directory
    return 0
