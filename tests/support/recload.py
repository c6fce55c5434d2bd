"""Open-loop load of visitors on GET /v1/recommendations: requests start at a fixed rate whatever the latency
(closed-loop generators hide slow answers), each from a visitor walking through a real session with its
history, as the widget sends it. View events are posted beside, as pages would.

    python -m tests.support.recload --url URL --key pk --sessions FILE --rate 200 --seconds 60 --out result.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from urllib.parse import quote, urlsplit


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, head: str, body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(head.encode() + body)
            await self.writer.drain()
            status = int((await self.reader.readline()).split()[1])
            length = 0
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await self.reader.readexactly(length)
            return status
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            self.writer.close()
            self.writer = None
            raise


async def run(url: str, key: str, sessions: list[list[str]], rate: float, seconds: float, placement: str,
              connections: int, seed: int) -> dict:
    parts = urlsplit(url)
    rng = random.Random(seed)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(parts.hostname, parts.port))
    latencies, errors, statuses, late = [], 0, {}, 0
    slow: list[tuple[float, float]] = []                # (seconds into the run, latency ms) of each request
    start = time.perf_counter()
    visitors: list[dict] = []

    def next_step() -> tuple[str, list[str], str]:
        """A visitor's next page: (session id, history so far, item viewed); new visitors replace finished ones."""
        if len(visitors) < 64 or rng.random() < 0.05:
            visitors.append({"id": secrets.token_urlsafe(16), "items": rng.choice(sessions), "pos": 0})
        v = rng.choice(visitors)
        item = v["items"][v["pos"]]
        v["pos"] += 1
        history = v["items"][max(0, v["pos"] - 20):v["pos"]]
        if v["pos"] >= len(v["items"]):
            visitors.remove(v)
        return v["id"], history, item

    async def one(session: str, history: list[str], item: str) -> None:
        nonlocal errors, late
        conn = await pool.get()
        try:
            body = json.dumps({"key": key, "session": session, "events": [{"type": "view", "item": item}]}).encode()
            await conn.request(f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                               f"Content-Length: {len(body)}\r\n\r\n", body)
            q = (f"/v1/recommendations?key={key}&placement={placement}&session={session}&item={quote(item)}"
                 f"&n=8&history={quote(','.join(history))}")
            t0 = time.perf_counter()
            status = await conn.request(f"GET {q} HTTP/1.1\r\nHost: x\r\n\r\n")
            latencies.append(time.perf_counter() - t0)
            slow.append((round(t0 - start, 2), round(1000 * latencies[-1], 1)))
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                errors += 1
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            pool.put_nowait(conn)

    tasks = []
    start = time.perf_counter()
    n = int(rate * seconds)
    for k in range(n):
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        tasks.append(asyncio.create_task(one(*next_step())))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    lat = sorted(latencies)
    pct = lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None  # noqa: E731
    return {"requests": len(lat), "rate_target": rate, "rate_achieved": round(len(lat) / elapsed, 1),
            "seconds": round(elapsed, 1), "errors": errors, "status": {str(k): v for k, v in statuses.items()},
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "late_starts": late, "slowest": sorted(slow, key=lambda s: -s[1])[:10]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--sessions", required=True, help="JSON file: a list of sessions (lists of item ids)")
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--placement", default="product-page")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    sessions = json.loads(open(args.sessions).read())
    result = asyncio.run(run(args.url, args.key, sessions, args.rate, args.seconds, args.placement,
                             args.connections, args.seed))
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
