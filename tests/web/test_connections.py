"""A real `upnext serve` against hostile connections (raw sockets): oversized request heads are refused without
the server's memory growing, unfinished requests and silent connections are closed after the timeout, past the
connection cap new clients are answered 503 rather than reset, and normal requests keep working meanwhile."""
import contextlib
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from backend.simulation.server import ServerProcess

pytestmark = pytest.mark.slow

ENV = {"UPNEXT_MAX_HEADER_KIB": "16", "UPNEXT_HEADER_TIMEOUT_S": "2", "UPNEXT_BODY_TIMEOUT_S": "2",
       "UPNEXT_MAX_CONNECTIONS": "40"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, _sqlite_template):
    folder = tmp_path_factory.mktemp("connections")
    shutil.copy(_sqlite_template, folder / "upnext.db")
    with ServerProcess(f"sqlite:///{folder / 'upnext.db'}", data_dir=folder / "var", env=ENV,
                       log_path=folder / "server.log") as server:
        yield server


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"" when it closed without a word)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _healthy(server) -> bool:
    return httpx.get(server.url + "/healthz", headers={"Connection": "close"}, timeout=10).status_code == 200


def test_an_oversized_request_head_is_refused_and_memory_does_not_grow(server):
    before = _rss_mib(server.proc.pid)
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(_connect(server)) for _ in range(8)]
        sent = []
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ")
            n = 0
            try:
                while n < 50 << 20:                # 50 MiB of header that never ends
                    sock.sendall(b"a" * (1 << 20))
                    n += 1 << 20
            except (BrokenPipeError, ConnectionResetError):
                pass
            sent.append(n)
        answers = [_answer(sock) for sock in socks]
    after = _rss_mib(server.proc.pid)
    print(f"\nserver RSS {before:.0f} -> {after:.0f} MiB; at most {max(sent) >> 20} MiB sent per connection "
          f"before the server closed it (socket buffers included)")
    assert all(a == b"" or a.startswith(b"HTTP/1.1 431 ") for a in answers)
    assert max(sent) < 50 << 20                # the server stopped reading and closed
    assert after - before < 64                 # 8 x 50 MiB were offered
    assert _healthy(server)


def test_unfinished_requests_and_silent_connections_are_closed_after_the_timeout(server):
    with contextlib.ExitStack() as stack:
        silent, head, body, answered = (stack.enter_context(_connect(server)) for _ in range(4))
        head.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")                     # the blank line never comes
        body.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"events\": [")
        # answered (401) without its body being read: the rest of the body never comes either
        answered.sendall(b"PUT /v1/items HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"items\": [")
        assert _healthy(server)                    # others are served meanwhile
        started = time.monotonic()
        answers = [_answer(s) for s in (silent, head, body, answered)]
        print(f"\nunfinished requests closed after {time.monotonic() - started:.1f} s (timeout 2 s)")
    assert answers[0] == b"" or answers[0].startswith(b"HTTP/1.1 408 ")
    assert answers[1].startswith(b"HTTP/1.1 408 ") and answers[2].startswith(b"HTTP/1.1 408 ")
    assert answers[3].startswith(b"HTTP/1.1 401 ") and b" 408 " not in answers[3]


def test_past_the_connection_cap_new_clients_are_answered_503_then_served_again(server):
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(_connect(server)) for _ in range(45)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")                    # slowloris
        time.sleep(0.2)
        r = httpx.get(server.url + "/healthz", headers={"Connection": "close"}, timeout=10)
        assert r.status_code == 503
        assert all(_answer(sock).startswith(b"HTTP/1.1 408 ") for sock in held)     # the timeout frees them
    assert _healthy(server)


def test_a_slow_body_that_keeps_coming_is_not_cut_off(server):
    body = b'{"key": "pk_none", "events": []}'
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                     % len(body))
        for k in range(0, len(body), 4):       # 4 s in all, twice the timeouts, never 2 s without a byte
            sock.sendall(body[k:k + 4])
            time.sleep(0.5)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 ") and b" 408 " not in answer.split(b"\r\n")[0]
