"""Listening for connections: uvicorn, with the limits that an ASGI app cannot set itself.

uvicorn waits for a request's headers as long as a client cares to trickle them, so one
client could hold connections open forever before any check of ours runs. Here a connection
must finish each request's headers within HEADER_TIMEOUT_S (from its opening, or from the end
of the previous answer). How many requests are answered at once (guard.MAX_REQUESTS, a JSON
503 beyond) and a body's pace (guard.BODY_TIMEOUT_S) are the guard's to bound. A request
uvicorn cannot parse (a malformed line or header, a Content-Length of 30 digits) is answered here,
before the app, as the app answers: a JSON error with the security headers.
"""

from __future__ import annotations

import asyncio
import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from synthswap.serve.guard import SECURITY_HEADERS

HEADER_TIMEOUT_S = 20.0


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers are not all in
    within HEADER_TIMEOUT_S."""

    header_timeout_s = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        # IDLE: no complete request line and headers since the timer started (a request being
        # received or answered has moved on to SEND_BODY or DONE).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": f"not an HTTP request this server can read ({msg})"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), *SECURITY_HEADERS]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)


def serve(app, host: str, port: int) -> None:
    """Serve `app` until SIGINT or SIGTERM. No access log: nothing of a request (its query may hold
    the token) is written anywhere."""
    uvicorn.run(app, host=host, port=port, http=HeaderTimeoutProtocol, timeout_keep_alive=5, log_level="warning",
                access_log=False)
