"""Group commit: many concurrent requests share one transaction.

Used for events (``POST /v1/events`` waits for the commit before replying 202) and for the served
recommendation lists (recorded for attribution without making the visitor wait).

A request hands its rows to ``GroupCommitWriter.submit`` and waits; a single flusher task takes everything pending,
inserts it in one transaction on a worker thread, and then wakes every request in that batch. The reply (202)
is therefore sent only after the rows are committed, yet the database sees one commit every few milliseconds
instead of one per request. While a commit runs, new requests pile up and form the next batch by themselves.

A request waits at most ``timeout_s`` for its commit (StoreUnavailable then: its rows are taken out of the queue
when they were not written yet); while a commit has been running longer than that (a hung database), new rows are
refused at once instead of queueing behind it. A database fault is logged once per fault period, not per batch.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import Engine, Table, insert
from sqlalchemy.exc import SQLAlchemyError

from backend.logs import FaultLog
from backend.store.tables import Event, ServedList

log = logging.getLogger(__name__)


class StoreBusy(Exception):
    """Too many events are waiting for the database: the client should retry later (503)."""


class StoreUnavailable(Exception):
    """The database refused the batch (locked for too long, unreachable, full): retry later (503)."""


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    done: asyncio.Future = field(repr=False)
    taken: bool = False               # handed to a commit: it can no longer be withdrawn


class GroupCommitWriter:
    """Inserts rows into ``table`` in shared transactions. Owns the flusher task; ``start`` and ``stop`` are
    called by the app's lifespan."""

    def __init__(self, engine: Engine, table: Table, *, interval_s: float = 0.002, max_batch: int = 5000,
                 max_pending: int = 50_000, on_commit: Callable[[int, float], None] | None = None,
                 timeout_s: float | None = None):
        self._engine = engine
        self._timeout_s = timeout_s
        self._commit_since: float | None = None     # monotonic start of the commit in progress
        self._faults = FaultLog(log, f"{table.name} commit")
        self._interval_s, self._max_batch, self._max_pending = interval_s, max_batch, max_pending
        self._on_commit = on_commit or (lambda n, seconds: None)
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._table = table
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"commit-{table.name}")

    @property
    def pending(self) -> int:
        return self._queued_rows

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"commit-{self._table.name}")

    async def stop(self) -> None:
        """Commit everything already accepted, then stop. New submissions are refused from now on."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are committed; raise StoreBusy or StoreUnavailable otherwise (the rows may still
        be written when the timeout passed while their commit was running)."""
        pending = self._enqueue(rows)
        fut = pending.done
        try:
            # shield: a client that hangs up does not cancel the commit of its rows
            await asyncio.wait_for(asyncio.shield(fut), self._timeout_s)
        except asyncio.TimeoutError:
            if not fut.done():
                fut.set_exception(StoreUnavailable(f"no commit within {self._timeout_s:g} s"))
                fut.exception()
            if not pending.taken and pending in self._queue:
                self._queue.remove(pending)
                self._queued_rows -= len(pending.rows)
            raise StoreUnavailable(f"no commit within {self._timeout_s:g} s") from None

    def put_nowait(self, rows: list[dict[str, Any]]) -> bool:
        """Queue ``rows`` for the next commit without waiting for it; False (and nothing queued) when the
        writer is closed or full. Failures are logged by the flusher."""
        try:
            fut = self._enqueue(rows).done
        except (StoreBusy, StoreUnavailable):
            return False
        fut.add_done_callback(lambda f: f.exception())   # mark retrieved: the flusher logged it
        return True

    @property
    def stuck(self) -> bool:
        """A commit has been running for longer than the timeout (the database hangs)."""
        since = self._commit_since
        return self._timeout_s is not None and since is not None and time.monotonic() - since > self._timeout_s

    def _enqueue(self, rows: list[dict[str, Any]]) -> _Pending:
        if self._closing or self._task is None:
            raise StoreUnavailable("shutting down")
        if self._task.done():
            raise StoreUnavailable(f"{self._table.name} writer stopped")
        if self.stuck:
            raise StoreUnavailable(f"the database has not finished a commit in {self._timeout_s:g} s")
        if self._queued_rows + len(rows) > self._max_pending:
            raise StoreBusy(f"{self._queued_rows} rows are waiting for the database")
        pending = _Pending(rows, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._queued_rows += len(rows)
        self._wake.set()
        return pending

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if self._interval_s and not self._closing:
                await asyncio.sleep(self._interval_s)   # let concurrent requests join this batch
            self._wake.clear()
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                rows = [r for p in batch for r in p.rows]
                t0 = time.perf_counter()
                self._commit_since = time.monotonic()
                try:
                    await loop.run_in_executor(self._pool, self._insert, rows)
                except SQLAlchemyError as exc:
                    self._faults.failed(exc, table=self._table.name, rows=len(rows))
                    for p in batch:
                        if not p.done.done():
                            p.done.set_exception(StoreUnavailable(str(exc)[:200]))
                            p.done.exception()  # retrieved: no "never retrieved" noise if the client left
                    continue
                finally:
                    self._commit_since = None
                self._faults.succeeded()
                self._on_commit(len(rows), time.perf_counter() - t0)
                for p in batch:
                    if not p.done.done():
                        p.done.set_result(None)
            if self._closing:
                return

    def _take(self) -> list[_Pending]:
        taken, n = [], 0
        while self._queue and (not taken or n + len(self._queue[0].rows) <= self._max_batch):
            p = self._queue.popleft()
            self._queued_rows -= len(p.rows)
            if p.done.done():         # its request gave up (timeout): not written
                continue
            p.taken = True
            taken.append(p)
            n += len(p.rows)
        return taken

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(self._table), rows)


def events_writer(engine: Engine, **kwargs) -> GroupCommitWriter:
    """The writer of visitors' events (``POST /v1/events`` replies 202 after its commit)."""
    return GroupCommitWriter(engine, Event.__table__, **kwargs)


def served_lists_writer(engine: Engine, **kwargs) -> GroupCommitWriter:
    """The writer of served recommendation lists (kept for attribution; nobody waits for it)."""
    return GroupCommitWriter(engine, ServedList.__table__, **kwargs)
