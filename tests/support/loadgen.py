"""Event load generator: N concurrent keep-alive clients post batches of events to ``/v1/events``.

Run as its own process (``python -m tests.support.loadgen ...``) so it does not share the server's core.
Each request uses a fresh session id; the ids of acknowledged (202) requests are written out, so a caller
can check afterwards that every acknowledged event is in the database.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from urllib.parse import urlsplit


async def _client(host: str, port: int, key: str, origin: str, batch: int, deadline: float, out: dict,
                  stop_on_error: bool) -> None:
    reader = writer = None
    items = [f"ITEM-{i}" for i in range(1000)]
    n = 0
    while time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                out["errors"] += 1
                if stop_on_error:
                    return
                await asyncio.sleep(0.05)
                continue
        session = secrets.token_urlsafe(18)
        n += 1
        body = json.dumps({"key": key, "session": session, "events": [
            {"type": "view", "item": items[(n * 7 + k * 13) % len(items)]} for k in range(batch)]}).encode()
        head = (f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\n"
                f"Origin: {origin}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        t0 = time.perf_counter()
        try:
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            out["errors"] += 1
            writer.close()
            writer = None
            if stop_on_error:
                return
            continue
        out["latencies"].append(time.perf_counter() - t0)
        out["status"][status] = out["status"].get(status, 0) + 1
        if status == 202:
            out["acked"].append(session)
    if writer is not None:
        writer.close()


async def run_load(url: str, key: str, origin: str, clients: int, seconds: float, batch: int = 10,
                   stop_on_error: bool = False) -> dict:
    parts = urlsplit(url)
    out = {"latencies": [], "status": {}, "acked": [], "errors": 0}
    deadline = time.monotonic() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(parts.hostname, parts.port, key, origin, batch, deadline, out, stop_on_error)
                           for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    lat = sorted(out["latencies"])
    pct = lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None  # noqa: E731
    return {"seconds": round(elapsed, 2), "clients": clients, "batch": batch,
            "requests": len(lat), "status": {str(k): v for k, v in sorted(out["status"].items())},
            "errors": out["errors"], "acked_events": len(out["acked"]) * batch,
            "events_per_s": round(len(out["acked"]) * batch / elapsed, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else None,
            "acked_sessions": out["acked"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--origin", default="http://127.0.0.1")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--stop-on-error", action="store_true")
    p.add_argument("--out", required=True, help="write the result JSON here")
    args = p.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run_load(args.url, args.key, args.origin, args.clients, args.seconds, args.batch,
                                  args.stop_on_error))
    with open(args.out, "w") as f:
        json.dump(result, f)
    summary = {k: v for k, v in result.items() if k != "acked_sessions"}
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
