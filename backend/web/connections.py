"""The HTTP connection as ``upnext serve`` accepts it: uvicorn's httptools protocol with the limits a hostile client
must not pass (httptools itself buffers a request's headers without limit, and waits for them forever).

- A request's line and headers may take ``UPNEXT_MAX_HEADER_KIB``: past it, 431 and the connection closes (the
  excess read before noticing is at most one read, 256 KiB).
- They must arrive within ``UPNEXT_HEADER_TIMEOUT_S`` of their first byte (for a connection's first request, of its
  opening: a connection that sends nothing is closed too), and a body may not pause longer than
  ``UPNEXT_BODY_TIMEOUT_S``: else 408 (when no response has started) and the connection closes. While the server
  itself has stopped reading (a pipelined request waits its turn, a body waits for the handler), the clock is
  restarted rather than held against the client.

Idle keep-alive connections (``UPNEXT_KEEP_ALIVE_S``) and the cap on connections (``UPNEXT_MAX_CONNECTIONS``,
answered 503) are uvicorn's own ``timeout_keep_alive`` and ``limit_concurrency``, set by backend/commands/serve.py.
"""
from __future__ import annotations

import asyncio
import functools

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from backend.settings import Settings


@functools.cache
def _limits() -> tuple[int, float, float]:
    """(max head bytes, header timeout, body timeout) of this process, read once."""
    settings = Settings.from_env()
    return settings.max_header_kib * 1024, settings.header_timeout_s, settings.body_timeout_s


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` with a bounded head and timeouts for unfinished requests (module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes, self.header_timeout_s, self.body_timeout_s = _limits()
        self.reading_head = True          # between requests or inside a request's line and headers
        self.head_bytes = 0
        self.deadline: asyncio.TimerHandle | None = None

    # -- the clock
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _may_answer(self) -> bool:
        """No response of this connection is under way, nor one to the current request already sent."""
        if self.reading_head:
            return self.cycle is None or self.cycle.response_complete
        return not self.cycle.response_started

    def _expired(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        waiting_on_us = self.flow.read_paused or (
            self.reading_head and self.cycle is not None and not self.cycle.response_complete)
        if waiting_on_us:                 # we are not reading, or the client waits for our answer first
            self._arm(self.header_timeout_s if self.reading_head else self.body_timeout_s)
            return
        self._refuse(408, b"Request Timeout")

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer ``status`` (unless the request already has its answer, or another is under way) and close."""
        if self._may_answer():
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [b"content-type: text/plain; charset=utf-8\r\ncontent-length: ", str(len(message)).encode(),
                     b"\r\nconnection: close\r\n\r\n", message]
            self.transport.write(b"".join(head))
        self.transport.close()

    # -- asyncio.Protocol and parser callbacks
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.head_bytes += len(data)
        elif self.deadline is not None:
            self._arm(self.body_timeout_s)          # the body is still coming
        super().data_received(data)
        if self.reading_head and self.head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse(431, b"Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline is None:                  # a new request on a kept-alive connection: its clock starts
            self._arm(self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._arm(self.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_head, self.head_bytes = True, 0
        self._disarm()
        super().on_message_complete()
