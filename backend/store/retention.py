"""Retention: events older than the configured number of days are deleted, in small transactions."""
from __future__ import annotations

from sqlalchemy import Engine, delete, select

from backend.clock import now_ms
from backend.store.tables import Event

DAY_MS = 86_400_000
CHUNK = 20_000


def purge_events(engine: Engine, retention_days: int, *, now: int | None = None) -> int:
    """Delete events received more than ``retention_days`` ago; returns how many were deleted.

    Chunks of at most CHUNK rows keep each write transaction short, so event ingestion never waits long.
    """
    cutoff = (now if now is not None else now_ms()) - retention_days * DAY_MS
    total = 0
    while True:
        with engine.begin() as conn:
            ids = select(Event.id).where(Event.received_ms < cutoff).limit(CHUNK).scalar_subquery()
            n = conn.execute(delete(Event).where(Event.id.in_(ids))).rowcount
        total += n
        if n < CHUNK:
            return total
