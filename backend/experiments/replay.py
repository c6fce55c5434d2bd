"""Replays sessions as visitors through the HTTP API of a running server: several sessions at once (asyncio,
keep-alive connections), each one page after the other (backend/experiments/visitor.py says what a visitor does).
Counts what it did per arm, so the report computed from the database can be checked against it."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import orjson

from backend.errors import UpnextError
from backend.experiments.http_client import Connection
from backend.experiments.visitor import VisitorModel, page_events

HISTORY_SENT = 20          # the widget's window (api.md)
OUTSIDE = "(outside)"      # answers without an arm


class ReplayError(UpnextError):
    """The server answered something a visitor's widget could not use."""


@dataclass
class ReplayCounts:
    """What the visitors did, per arm name: requests, clicks, and the sessions that reached each arm."""
    requests: Counter = field(default_factory=Counter)
    clicks: Counter = field(default_factory=Counter)
    sessions: Counter = field(default_factory=Counter)
    events: int = 0


def session_id(seed: int, number: int) -> str:
    """A 24-character session id like the widget's random ones, reproducible from (seed, number)."""
    digest = hashlib.blake2b(f"upnext-simulate:{seed}:{number}".encode(), digest_size=18).digest()
    return base64.urlsafe_b64encode(digest).decode()


class _Visitor:
    """One concurrent visitor: replays sessions one after the other on its own keep-alive connection."""

    def __init__(self, url: str, key: str, placement: str, n: int, model: VisitorModel, seed: int,
                 counts: ReplayCounts):
        self.conn, self.key, self.placement, self.n = Connection(url), key, placement, n
        self.model, self.seed, self.counts = model, seed, counts

    async def _post(self, session: str, events: list[dict]) -> None:
        status, body = await self.conn.request("POST", "/v1/events",
                                               json={"key": self.key, "session": session, "events": events})
        if status != 202:
            raise ReplayError(f"POST /v1/events answered {status}: {body[:300].decode(errors='replace')}")
        self.counts.events += len(events)

    async def _ask(self, session: str, item: str, history: list[str]) -> dict:
        status, body = await self.conn.request("GET", "/v1/recommendations", params={
            "key": self.key, "placement": self.placement, "session": session, "item": item, "n": self.n,
            "history": ",".join(history[-HISTORY_SENT:])})
        if status != 200:
            raise ReplayError(f"GET /v1/recommendations answered {status}: {body[:300].decode(errors='replace')}")
        return orjson.loads(body)

    async def visit(self, number: int, items: list[str]) -> None:
        """One session: land on items[0], then for each next item ask, maybe click, and move on."""
        session = session_id(self.seed, number)
        rng = random.Random(f"{self.seed}:{number}")
        await self._post(session, [{"type": "view", "item": items[0]}, *page_events(self.model, rng, items[0])])
        history, arm = [items[0]], None
        for current, following in zip(items, items[1:]):
            answer = await self._ask(session, current, history)
            arm = answer.get("arm") or OUTSIDE
            self.counts.requests[arm] += 1
            shown = [it["id"] for it in answer["items"]]
            events: list[dict] = []
            if shown:
                events.append({"type": "rec_impression", "rec": answer["rec"], "items": shown})
            if following in shown:
                events.append({"type": "rec_click", "rec": answer["rec"], "item": following})
                self.counts.clicks[arm] += 1
            events.append({"type": "view", "item": following})
            events.extend(page_events(self.model, rng, following))
            await self._post(session, events)
            history.append(following)
        if arm is not None:
            self.counts.sessions[arm] += 1


async def replay(url: str, key: str, placement: str, sessions: list[list[str]], *, n: int = 20,
                 model: VisitorModel = VisitorModel(), seed: int = 1, concurrency: int = 16,
                 progress: Callable[[int], None] | None = None) -> ReplayCounts:
    """Replay ``sessions`` (lists of item ids, in order) against the server at ``url``; ``concurrency``
    sessions at a time. ``progress(k)`` is called after each finished session."""
    counts = ReplayCounts()
    queue = iter(enumerate(sessions))

    async def worker() -> None:
        visitor = _Visitor(url, key, placement, n, model, seed, counts)
        try:
            for number, items in queue:
                await visitor.visit(number, items)
                if progress:
                    progress(1)
        finally:
            await visitor.conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts
