"""The request guard: what every request passes before the app sees it (host, token, CSRF, body
size and pace), the security headers every answer carries, and the one place where a request that
failed becomes its JSON answer."""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import math
import sys
import traceback
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

MIN_TOKEN_LENGTH = 16  # 16 URL-safe characters: 96 bits, beyond guessing at one try a second
CSRF_HEADER = "x-synthswap"  # fetch() from our page sets it; a cross-site form or image cannot
UPLOAD_PATH = "/api/uploads"  # its body is a file: bounded by --max-upload-mb and the quota (uploads.py)
JSON_BODY_LIMIT = 64 * 1024  # every other body is a small JSON object: a job's form is under 2 KB
BODY_TIMEOUT_S = 60.0  # longest wait for the next piece of a request body
GUESS_PAUSE_S = 1.0  # a wrong token is answered after this pause; others meanwhile get 429 at once
MAX_REQUESTS = 64  # answered at once; beyond, 503 (a page makes a few at a time, uploads one per file)

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                 b"style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # No other site may embed our previews or the output video in its page.
    (b"cross-origin-resource-policy", b"same-origin"),
]


class Refused(Exception):
    """A request refused with a message for the page and an HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def token_cookie(port: int) -> str:
    """The cookie's name: browsers send a host's cookies to every port of it, so two servers on one
    machine (two users, or two data folders) each keep their own."""
    return f"synthswap_token_{port}"


def _finite(value: Any) -> Any:
    """JSON has no NaN: metrics that could not be measured are sent as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_finite(data), status_code=status, headers={"cache-control": "no-store", **(headers or {})})


def error(message: str, status: int = 400) -> JSONResponse:
    """Every refused request's answer: {"error": message}, shown as it is on the page."""
    return json_answer({"error": message}, status)


def declared_length(request: Request) -> int | None:
    """The body's length as its Content-Length header declares it (None: not declared); a number
    too long to be a length declares more than any limit."""
    length = request.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()):
        return None
    return int(length) if len(length) <= 18 else 10**18


async def read_json(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object (its size is bounded by the guard), or Refused."""
    body = await request.body()
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise Refused("the request is not JSON (or nested too deep)", 400) from None
    if not isinstance(value, dict):
        raise Refused("the request must be a JSON object", 422)
    return value


def refusal(exc: BaseException) -> tuple[str, int]:
    """The message and status of a request that raised `exc`."""
    if isinstance(exc, Refused):
        return str(exc), exc.status
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the server's disk is full: nothing was kept; free some space and try again", 507
    return f"internal error ({type(exc).__name__}); the server's output says where", 500


def _log(scope, exc: BaseException, status: int) -> None:
    """One line in the server's output: the request's path (never its query, which may hold the
    token), and for an unexpected error where it happened."""
    where = ""
    if status == 500 and exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" at {frame.filename}:{frame.lineno}"
    print(f"synthswap serve: {scope.get('method')} {scope.get('path')}: {status} {type(exc).__name__}: "
          f"{str(exc)[:300]}{where}", file=sys.stderr, flush=True)


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Every route's exception handler (app.py registers it): a JSON answer, never a traceback."""
    if isinstance(exc, ClientDisconnect):  # an aborted upload: nobody is listening any more
        return Response(status_code=400)
    message, status = refusal(exc)
    if not isinstance(exc, Refused):
        _log(request.scope, exc, status)
    return error(message, status)


class Guard:
    """Checks every request before the app sees it: the Host header (a page of another site that
    resolves its own name to 127.0.0.1 must not reach us), the token, the CSRF header on every
    request that changes something, and the size and pace of its body. Adds the security headers,
    and turns whatever a request raised into a JSON answer."""

    def __init__(self, app, token: str | None, allowed_hosts: tuple[str, ...] | None, port: int = 7860,
                 body_timeout_s: float = BODY_TIMEOUT_S, guess_pause_s: float = GUESS_PAUSE_S):
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the token must be at least {MIN_TOKEN_LENGTH} characters long")
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts
        self.cookie = token_cookie(port)
        self.body_timeout_s = body_timeout_s
        self.guess_pause_s = guess_pause_s
        self._guessing = asyncio.Lock()
        self.max_requests = MAX_REQUESTS
        self._active = 0  # requests being answered (one event loop: no lock needed)

    def _matches(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _given_token(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else request.cookies.get(self.cookie, "")

    async def _check(self, request: Request) -> Response | None:
        """The answer to a request refused before the app, or None."""
        hosts = self.allowed_hosts
        try:
            hostname = request.url.hostname
        except ValueError:  # a Host header that is no host ("[", "a]b")
            hostname = None
        if hosts is not None and hostname not in hosts:
            return error("this server only answers requests for the address it printed", 403)
        if self.token:
            link = request.query_params.get("token")
            if link is not None and self._matches(link):
                # Once, from the link the server printed: keep it in a cookie, drop it from the address.
                # Only ever to a path of ours: "//evil.example/" would be another site.
                response = RedirectResponse("/" + request.url.path.lstrip("/\\"), 303)
                response.set_cookie(self.cookie, link, httponly=True, samesite="strict")
                return response
            given = link if link is not None else self._given_token(request)
            if not given or not self._matches(given):
                if given and self._guessing.locked():  # not queued: guesses must not tie up the server
                    return error("too many wrong tokens: wait a second", 429)
                if given:  # a wrong guess: answered after a pause, so guessing goes at one try a second
                    async with self._guessing:
                        await asyncio.sleep(self.guess_pause_s)
                return error("a token is required: open the link `synthswap serve` printed", 401)
        if request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
            return error("refused: requests that change something must come from the synthswap page", 403)
        length = declared_length(request)
        if request.url.path != UPLOAD_PATH and length is not None and length > JSON_BODY_LIMIT:
            return error(f"the request is larger than the limit of {JSON_BODY_LIMIT // 1024} KB", 413)
        return None

    def _bounded(self, scope, receive):
        """`receive` with a pause limit on the body, and a size limit unless it is an upload."""
        limit = None if scope["path"] == UPLOAD_PATH else JSON_BODY_LIMIT
        size, done = 0, False

        async def bounded():
            nonlocal size, done
            if done:  # the body is in: what follows is the wait for a disconnect, as long as it takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout_s)
            except asyncio.TimeoutError:
                raise Refused(f"the request's body stopped arriving for {self.body_timeout_s:.0f} s", 408) from None
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if limit is not None and size > limit:
                    raise Refused(f"the request is larger than the limit of {limit // 1024} KB", 413)
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        return bounded

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        if self._active >= self.max_requests:
            return await error("the server is busy: try again in a moment", 503)(scope, receive, send_with_headers)
        self._active += 1
        try:
            response = await self._check(Request(scope))
            if response is not None:
                return await response(scope, receive, send_with_headers)
            await self.app(scope, self._bounded(scope, receive), send_with_headers)
        except Exception as exc:  # the app's handler answered and logged it (Starlette re-raises a 500)
            if not started:
                message, status = refusal(exc)
                _log(scope, exc, status)
                await error(message, status)(scope, receive, send_with_headers)
        finally:
            self._active -= 1
