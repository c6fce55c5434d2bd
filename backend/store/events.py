"""Stored events outside the request path: how many a site has, and bulk inserts (the demo's generated visits).
Events from visitors are written by the group commit (group_commit.py); training reads them through export.py."""
from __future__ import annotations

from sqlalchemy import Engine, func, insert, select

from backend.store.tables import Event

CHUNK = 20_000


def count_events(engine: Engine, site_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event).where(Event.site_id == site_id)).scalar())


def insert_events(engine: Engine, rows: list[dict], *, progress=None) -> int:
    """Insert event rows (the ``events`` columns) in transactions of CHUNK rows; ``progress(done, total)``."""
    for start in range(0, len(rows), CHUNK):
        with engine.begin() as conn:
            conn.execute(insert(Event), rows[start:start + CHUNK])
        if progress:
            progress(min(len(rows), start + CHUNK), len(rows))
    return len(rows)
