"""Replays sessions as visitors through the HTTP API of a running server: several sessions at once (asyncio,
keep-alive connections), each one page after the other (backend/simulation/visitor.py says what a visitor does).
Counts what it did per arm, so the report computed from the database can be checked against it.

Two plans: one visit per real session, split between arms by the experiment's hash as real traffic is; or
*paired*, one visit per real session and arm (each with its own session id, drawn until the salted hash puts
it in that arm), so every arm sees every session: a within-session design that removes the between-arm
difference in sessions from the comparison (the same visitor draws too: common random numbers).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from typing import Callable

import orjson

from backend.errors import UpnextError
from backend.experiments.assignment import RunningExperiment
from backend.simulation.http_client import Connection
from backend.simulation.visitor import VisitorModel, page_events

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


def session_id(seed: int, number: int, attempt: int = 0) -> str:
    """A 24-character session id like the widget's random ones, reproducible from (seed, number, attempt)."""
    digest = hashlib.blake2b(f"upnext-simulate:{seed}:{number}:{attempt}".encode(), digest_size=18).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass(frozen=True)
class Visit:
    session: str            # the visitor's session id
    items: list[str]        # the real session's item ids, in order
    number: int             # the real session's number: seeds the visitor's draws (the same in every arm)


def plan_visits(sessions: list[list[str]], seed: int, paired: RunningExperiment | None = None) -> list[Visit]:
    """One visit per session; with ``paired`` (the running experiment), one per session and arm, in a seeded
    random order so that arms interleave in time (module docstring)."""
    if paired is None:
        return [Visit(session_id(seed, k), items, k) for k, items in enumerate(sessions)]
    visits = []
    for k, items in enumerate(sessions):
        per_arm: dict[str, str] = {}
        for attempt in count():
            sid = session_id(seed, k, attempt)
            per_arm.setdefault(paired.assign(sid).name, sid)
            if len(per_arm) == len(paired.arms):
                break
        visits.extend(Visit(sid, items, k) for sid in per_arm.values())
    random.Random(seed).shuffle(visits)
    return visits


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

    async def visit(self, plan: Visit) -> None:
        """One session: land on items[0], then for each next item ask, maybe click, and move on."""
        session, items = plan.session, plan.items
        rng = random.Random(f"{self.seed}:{plan.number}")
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


async def replay(url: str, key: str, placement: str, visits: list[Visit], *, n: int = 20,
                 model: VisitorModel = VisitorModel(), seed: int = 1, concurrency: int = 16,
                 progress: Callable[[int], None] | None = None) -> ReplayCounts:
    """Replay ``visits`` against the server at ``url``, ``concurrency`` at a time; ``seed`` seeds the visitors'
    draws. ``progress(k)`` is called after each finished visit."""
    counts = ReplayCounts()
    queue = iter(visits)

    async def worker() -> None:
        visitor = _Visitor(url, key, placement, n, model, seed, counts)
        try:
            for plan in queue:
                await visitor.visit(plan)
                if progress:
                    progress(1)
        finally:
            await visitor.conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts
