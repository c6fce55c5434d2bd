"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the simulator's visitors: one connection per
concurrent visitor, requests one after the other on it. General clients spend more time on the client side than
the server spends answering (measured: httpx ~7 ms of client CPU per request here), which would make the
simulator measure itself. Only what Upnext's server sends is understood: replies with a Content-Length."""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit

import orjson


class HttpError(Exception):
    """The connection failed or the reply could not be read."""


class Connection:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, params: dict | None = None,
                      json: object | None = None) -> tuple[int, bytes]:
        """(status, body) of one request; reconnects once if the server closed the idle connection."""
        target = path + ("?" + urlencode(params) if params else "")
        body = orjson.dumps(json) if json is not None else b""
        head = (f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Length: {len(body)}\r\n"
                + ("Content-Type: application/json\r\n" if json is not None else "") + "\r\n").encode()
        for attempt in (0, 1):
            try:
                if self._writer is None:
                    await self._open()
                self._writer.write(head + body)
                await self._writer.drain()
                return await self._read_reply()
            except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
                await self.close()
                if attempt:
                    raise HttpError(f"{method} {path}: {exc}") from None
        raise AssertionError("unreachable")

    async def _read_reply(self) -> tuple[int, bytes]:
        status_line = await self._reader.readline()
        if not status_line:
            raise HttpError("connection closed")
        status = int(status_line.split()[1])
        length, keep_alive = None, True
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        if length is None:
            raise HttpError("reply without Content-Length")
        body = await self._reader.readexactly(length)
        if not keep_alive:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None
