"""The simulator's minimal keep-alive HTTP client, against a tiny asyncio server: keep-alive, query strings and
JSON bodies, a connection closed by the server, and a reply it cannot read."""
import asyncio

import orjson
import pytest

from backend.simulation.http_client import Connection, HttpError


async def serve(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length"))
    return lines[0], await reader.readexactly(length)


def reply(body: bytes, status: int = 200, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_keep_alive_and_reconnect_after_the_server_closes():
    connections = []

    async def handler(reader, writer):
        connections.append(writer)
        try:
            while True:
                line, body = await read_request(reader)
                # the third request on a connection is answered with "Connection: close"
                close = len(connections) == 1 and line.startswith("POST") and orjson.loads(body)["k"] == 2
                writer.write(reply(orjson.dumps({"line": line, "body": body.decode()}), 202 if body else 200,
                                   "Connection: close\r\n" if close else ""))
                await writer.drain()
                if close:
                    writer.close()
                    return
        except asyncio.IncompleteReadError:
            writer.close()

    async def main():
        server, url = await serve(handler)
        conn = Connection(url)
        status, body = await conn.request("GET", "/v1/x", params={"a": "1,2", "b": "é"})
        assert status == 200 and orjson.loads(body)["line"] == "GET /v1/x?a=1%2C2&b=%C3%A9 HTTP/1.1"
        for k in range(4):
            status, body = await conn.request("POST", "/v1/events", json={"k": k})
            assert status == 202 and orjson.loads(orjson.loads(body)["body"]) == {"k": k}
        await conn.close()
        server.close()
        await server.wait_closed()
        return len(connections)

    assert asyncio.run(main()) == 2            # one reconnection, after the server's "Connection: close"


def test_a_reply_without_length_is_an_error():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main():
        server, url = await serve(handler)
        try:
            with pytest.raises(HttpError, match="without Content-Length"):
                await Connection(url).request("GET", "/")
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_a_connection_closed_while_idle_is_reopened_once():
    connections = []

    async def handler(reader, writer):
        connections.append(writer)
        await read_request(reader)
        writer.write(reply(b"{}"))           # keep-alive promised, then closed (an idle timeout)
        await writer.drain()
        writer.close()

    async def main():
        server, url = await serve(handler)
        conn = Connection(url)
        try:
            for _ in range(3):
                await asyncio.sleep(0.05)    # the close reaches the client while it is idle
                assert (await conn.request("GET", "/"))[0] == 200
        finally:
            await conn.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    assert len(connections) == 3
