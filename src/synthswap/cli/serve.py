"""`synthswap serve`: the local web app (job queue, live progress, previews, results)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import add_common, add_flags, fail
from synthswap.locking import LockError, locked_output
from synthswap.options import option
from synthswap.serve.guard import MIN_TOKEN_LENGTH

TOKEN_ENV = "SYNTHSWAP_TOKEN"


@dataclass(kw_only=True)
class ServeOptions:
    """The server's own options (the jobs' device and threads are ComputeOptions' flags)."""

    host: str = option("127.0.0.1", "address to listen on (127.0.0.1: this machine only)")
    port: int = option(7860, "port", minimum=1, maximum=65535)
    data: str = option("synthswap_data", "where jobs, uploads and results are kept", metavar="DIR")
    media: str | None = option(None, "a folder whose photos and videos the page may pick instead of uploading them",
                               metavar="DIR")
    max_upload_mb: int = option(1024, "largest file the page accepts, in MB", minimum=1, metavar="MB")
    upload_quota_mb: int = option(4096, "room for uploads no job has used yet, all together, in MB (they expire "
                                        "after a day)", minimum=1, metavar="MB")
    max_queued: int = option(20, "jobs that may wait in the queue at once", minimum=1, metavar="N")
    allow_remote: bool = option(False, "allow a --host other than this machine (plain HTTP: a trusted network "
                                       "only)")
    token: str | None = option(None, f"the token every request needs, at least {MIN_TOKEN_LENGTH} characters "
                                     f"(default: ${TOKEN_ENV}, else a random one); the printed link carries it")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help=summary("serve"),
        description=(
            "Serve a web page for `synthswap run` jobs: upload (or pick) the subject's photos and a destination "
            "video, choose the settings, and follow the queued jobs' stages, training progress and previews; "
            "the output video, its report and downloads appear when a job is done. Jobs are kept in DATA "
            "(SQLite + one folder per job, readable by this account only) and a job cut off by a restart "
            "resumes from its last finished stage. Every request needs the token of the printed link (as "
            "Jupyter does); binds to 127.0.0.1, and another address needs --allow-remote."
        ),
        epilog="example: synthswap serve --data ~/synthswap_data   (then open the link it prints, "
               "http://127.0.0.1:7860/?token=...)",
    )
    add_flags(p, ServeOptions)
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
    from synthswap.serve.app import Settings, create_app
    from synthswap.serve.listen import serve

    local = is_loopback(args.host)
    if not local and not args.allow_remote:
        return fail(f"--host {args.host} would let other machines reach this server; add --allow-remote "
                    f"(plain HTTP: a trusted network only), or keep the default 127.0.0.1")
    # A token on localhost too: on a machine with several accounts, every one of them can reach 127.0.0.1.
    token = args.token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    if len(token) < MIN_TOKEN_LENGTH:
        return fail(f"--token (or ${TOKEN_ENV}) must be at least {MIN_TOKEN_LENGTH} characters long, not "
                    f"{len(token)}; leave it out for a random one")
    if args.media and not Path(args.media).is_dir():
        return fail(f"--media {args.media}: not a folder")
    # Host names a page may use: those of this machine, and the very address given (127.0.0.2 too).
    hosts = tuple(dict.fromkeys(("127.0.0.1", "localhost", "::1", args.host))) if local else None
    settings = Settings(data=Path(args.data).resolve(), max_upload_bytes=args.max_upload_mb * 2**20,
                        upload_quota_bytes=args.upload_quota_mb * 2**20, max_waiting=args.max_queued,
                        media=Path(args.media) if args.media else None, device=args.device,
                        threads=args.threads, token=token, allowed_hosts=hosts, port=args.port)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    link = f"http://{'[' + shown + ']' if ':' in shown else shown}:{args.port}/"
    os.umask(0o077)  # whatever the server and its jobs write (uploads, faces, videos) is this account's only
    try:
        # One server per data directory: two would both take the same queued job.
        with locked_output(settings.data, "data directory"):
            print(f"synthswap serve: {link}?token={token}   (data: {settings.data})", flush=True)
            serve(create_app(settings), args.host, args.port)
    except LockError as exc:
        return fail(str(exc), 1)  # another `synthswap serve` uses this data directory
    return 0
