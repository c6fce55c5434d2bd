"""Retention: events and served recommendation lists (they carry session ids too) older than the configured
number of days are deleted, in small transactions."""
from __future__ import annotations

from sqlalchemy import Engine, delete, select

from backend.clock import now_ms
from backend.store.partitions import EVENTS, SERVED_LISTS, drop_partitions_before
from backend.store.tables import Event, ServedList, Site

DAY_MS = 86_400_000
CHUNK = 20_000


def purge_events(engine: Engine, retention_days: int, *, now: int | None = None) -> int:
    """Delete events received more than ``retention_days`` ago; returns how many were deleted.

    On PostgreSQL whole expired days go first, by dropping their partitions (store/partitions.py); what is left
    (the day the cutoff falls in, the default partition, SQLite) goes in chunks of at most CHUNK rows, which
    keeps each write transaction short, so event ingestion never waits long.
    """
    cutoff = (now if now is not None else now_ms()) - retention_days * DAY_MS
    _, total = drop_partitions_before(engine, cutoff, EVENTS)
    while True:
        with engine.begin() as conn:
            ids = select(Event.id).where(Event.received_ms < cutoff).limit(CHUNK).scalar_subquery()
            n = conn.execute(delete(Event).where(Event.id.in_(ids))).rowcount
        total += n
        if n < CHUNK:
            return total


def purge_served_lists(engine: Engine, retention_days: int, *, now: int | None = None) -> int:
    """Delete served lists older than ``retention_days``; returns how many were deleted.

    On PostgreSQL whole expired days go first, by dropping their partitions, as for the events; the rest goes
    site by site (through their (site, served) index), in chunks of at most CHUNK rows."""
    cutoff = (now if now is not None else now_ms()) - retention_days * DAY_MS
    _, total = drop_partitions_before(engine, cutoff, SERVED_LISTS)
    with engine.connect() as conn:
        site_ids = conn.execute(select(Site.id)).scalars().all()
    for site_id in site_ids:
        while True:
            with engine.begin() as conn:
                recs = (select(ServedList.rec).where(ServedList.site_id == site_id, ServedList.served_ms < cutoff)
                        .limit(CHUNK).scalar_subquery())
                n = conn.execute(delete(ServedList).where(ServedList.served_ms < cutoff,   # prunes partitions
                                                          ServedList.rec.in_(recs))).rowcount
            total += n
            if n < CHUNK:
                break
    return total
