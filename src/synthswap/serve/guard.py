"""The request guard: what every request passes before the app sees it, and the security headers
every answer carries."""

from __future__ import annotations

import hmac
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

TOKEN_COOKIE = "synthswap_token"
CSRF_HEADER = "x-synthswap"  # fetch() from our page sets it; a cross-site form or image cannot

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                 b"style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _finite(value: Any) -> Any:
    """JSON has no NaN: metrics that could not be measured are sent as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_answer(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_finite(data), status_code=status, headers={"cache-control": "no-store"})


def error(message: str, status: int = 400) -> JSONResponse:
    """Every refused request's answer: {"error": message}, shown as it is on the page."""
    return json_answer({"error": message}, status)


class Guard:
    """Checks every request before the app sees it: the Host header (a page of another site that
    resolves its own name to 127.0.0.1 must not reach us), the token when one is set, and the
    CSRF header on every request that changes something. Adds the security headers."""

    def __init__(self, app, token: str | None, allowed_hosts: tuple[str, ...] | None):
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    def _token_ok(self, request: Request) -> bool:
        assert self.token is not None  # asked only when a token is set
        given = request.cookies.get(TOKEN_COOKIE) or ""
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope, receive_, send):
        if scope["type"] != "http":
            return await self.app(scope, receive_, send)
        request = Request(scope)
        response: Response | None = None
        hosts = self.allowed_hosts
        if hosts is not None and request.url.hostname not in hosts:
            response = PlainTextResponse("this server only answers requests for localhost", 403)
        elif self.token:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                # Once, from the link the server printed: keep it in a cookie, drop it from the address.
                response = RedirectResponse(request.url.path, 303)
                response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
            elif not self._token_ok(request):
                response = PlainTextResponse("a token is required: open the link `synthswap serve` printed", 401)
        if response is None and request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
            response = error("refused: requests that change something must come from the synthswap page", 403)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        if response is not None:
            return await response(scope, receive_, send_with_headers)
        await self.app(scope, receive_, send_with_headers)
