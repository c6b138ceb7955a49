"""The HTTP limits uvicorn does not set by itself: how long a client may take to send a
request's headers and its body, and how large they may be.

uvicorn (0.55, httptools) times out only an idle keep-alive connection, after a response:
a connection that sends nothing, or half a request line, or headers one byte at a time,
or a body shorter than its Content-Length, is held for as long as the client likes, and
with ``limit_concurrency`` every connection held counts against the cap (measured: 800
idle sockets made every other client's request a 503). :class:`LimitedHttpProtocol` is
uvicorn's own httptools protocol with deadlines added:

* :data:`HEADER_TIMEOUT`: from the moment a connection opens, and again after each
  response, the next request's headers must be complete within this time, however slowly
  they trickle in; otherwise 408 (or, if nothing was sent at all, a plain close);
* :data:`HEADER_LIMIT`: at most this many bytes of request line and headers (431);
* :data:`BODY_TIMEOUT`: once the headers are in, the whole body within this time (408);
* :data:`BODY_LIMIT`: no body larger than this, declared or sent (413). Routes keep their
  own, smaller limits (:func:`partnercast.plugins.web.limited_body`); this one holds for
  every route, including any a plugin mounts.

Each answer closes the connection, so what the client held (a socket, its buffers, its
request task) is freed at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0
HEADER_LIMIT = 64 * 1024
BODY_TIMEOUT = 20.0
BODY_LIMIT = 10_000_000  # the largest route limit: a bounce carrying the returned message

_REASONS = {
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
}


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and size limits."""

    _deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _body_bytes = 0
    _waiting_headers = False
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._waiting_headers:
            super().data_received(data)
            return
        # Parse first: a read may hold the end of the headers and the start of the body (a
        # client that sends both at once), and only what is still headers after it counts.
        self._header_bytes += len(data)
        super().data_received(data)
        if self._waiting_headers and not self._refused and self._header_bytes > HEADER_LIMIT:
            self._refuse(431)

    def on_headers_complete(self) -> None:
        self._waiting_headers = False
        self._body_bytes = 0
        declared = self._content_length()
        if declared is not None and declared > BODY_LIMIT:
            self._cancel_deadline()
            self._refuse(413)
            return
        self._arm(BODY_TIMEOUT, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > BODY_LIMIT:
            self._refuse(413)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        if self._refused:
            return
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()  # the next request on this connection

    def _await_headers(self) -> None:
        self._waiting_headers = True
        self._header_bytes = 0
        self._arm(HEADER_TIMEOUT, self._headers_timed_out)

    def _arm(self, seconds: float, handler: Any) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, handler)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_timed_out(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request is being answered: its own deadlines hold
        if self._header_bytes:
            self._refuse(408)
        elif not self.transport.is_closing():
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._deadline = None
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` unless a response has started, then close the connection; the
        request's application task, if any, sees the client gone."""
        self._refused = True
        self._cancel_deadline()
        if self.transport.is_closing():
            return
        cycle = self.cycle if self.cycle is not None and not self.cycle.response_complete else None
        if cycle is None or not cycle.response_started:
            reason = _REASONS[status]
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s\n"
                % (status, reason, len(reason) + 1, reason)
            )
        self.transport.close()
        if cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()

    def _content_length(self) -> int | None:
        for name, value in self.headers:
            if name == b"content-length":
                return int(value) if value.isdigit() else None
        return None
