"""PostgreSQL: the events table is partitioned by UTC day on ``received_ms`` (migration 0011), and the served
lists table on ``served_ms`` (migration 0013), so a day of rows is one table: retention drops whole days instead
of deleting millions of rows, and a day's queries read one partition. Dropping a partition takes a brief
exclusive lock on its parent table; it is asked for with a LOCK_TIMEOUT_MS lock timeout, so inserts never queue
behind it for longer: when a long reader of that day holds it off, the day is left for the next round and its
rows are deleted in chunks meanwhile (store/retention.py). (``DETACH ... CONCURRENTLY`` would need no such lock,
but PostgreSQL refuses it while a DEFAULT partition exists, and the default partition is what keeps a row outside
every day partition from being refused.)

``ensure_partitions`` creates today's and the next days' partitions of every partitioned table (the server runs
it at start-up and with every retention round); rows outside every day partition land in ``<table>_default`` and
are never refused. On SQLite there is one table each and every function here does nothing.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from backend.clock import now_ms

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
AHEAD_DAYS = 3
LOCK_TIMEOUT_MS = 200


@dataclass(frozen=True)
class DayPartitioned:
    """A table partitioned by UTC day on the epoch-milliseconds column ``key``."""
    parent: str
    key: str

    @property
    def name(self) -> re.Pattern:
        """Names of its day partitions: ``<parent>_pYYYYMMDD``."""
        return re.compile(re.escape(self.parent) + r"_p(\d{8})")


EVENTS = DayPartitioned("events", "received_ms")
SERVED_LISTS = DayPartitioned("served_lists", "served_ms")
TABLES = (EVENTS, SERVED_LISTS)
PARTITION_NAME = re.compile(r"(" + "|".join(re.escape(t.parent) for t in TABLES) + r")_(p\d{8}|default)")


def partitioned(engine: Engine, table: DayPartitioned = EVENTS) -> bool:
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        return conn.execute(text("SELECT relkind FROM pg_class WHERE relname = :t AND relnamespace = "
                                 "'public'::regnamespace"), {"t": table.parent}).scalar() == "p"


def partition_name(day: int, table: DayPartitioned = EVENTS) -> str:
    """The partition of UTC day number ``day`` (days since 1970-01-01)."""
    return f"{table.parent}_p" + datetime.fromtimestamp(day * DAY_MS / 1000, timezone.utc).strftime("%Y%m%d")


def day_partitions(engine: Engine, table: DayPartitioned = EVENTS) -> dict[int, str]:
    """UTC day number -> name of its partition, for every day partition of ``table``."""
    with engine.connect() as conn:
        names = conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                  "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"),
                             {"t": table.parent}).scalars().all()
    out = {}
    for name in names:
        if m := table.name.fullmatch(name):
            day = int(datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=timezone.utc).timestamp()) // 86_400
            out[day] = name
    return out


def ensure_partitions(engine: Engine, *, now: int | None = None, ahead_days: int = AHEAD_DAYS,
                      tables: tuple[DayPartitioned, ...] = TABLES) -> list[str]:
    """Create the partitions of today and the next ``ahead_days`` days that do not exist, for each of ``tables``
    that is partitioned; returns their names."""
    today = (now_ms() if now is None else now) // DAY_MS
    created = []
    for table in tables:
        if not partitioned(engine, table):
            continue
        have = day_partitions(engine, table)
        for day in range(today, today + ahead_days + 1):
            if day in have:
                continue
            name = partition_name(day, table)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table.parent} "
                                      f"FOR VALUES FROM ({day * DAY_MS}) TO ({(day + 1) * DAY_MS})"))
            except Exception as exc:  # e.g. rows of that day already in the default partition: they stay there
                log.error("partition not created", extra={"partition": name, "reason": str(exc)[:300]})
                continue
            created.append(name)
    if created:
        log.info("partitions created", extra={"partitions": created})
    return created


def drop_partitions_before(engine: Engine, cutoff_ms: int, table: DayPartitioned = EVENTS) -> tuple[list[str], int]:
    """Drop the day partitions of ``table`` wholly older than ``cutoff_ms``; returns (their names, rows they
    held)."""
    if not partitioned(engine, table):
        return [], 0
    dropped, rows = [], 0
    for day, name in sorted(day_partitions(engine, table).items()):
        if (day + 1) * DAY_MS > cutoff_ms:
            break
        try:
            with engine.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
                n = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar()
                conn.execute(text(f"ALTER TABLE {table.parent} DETACH PARTITION {name}"))
                conn.execute(text(f"DROP TABLE {name}"))
        except OperationalError as exc:   # lock timeout: a reader holds that day; next round
            log.info("expired partition busy; left for the next round",
                     extra={"partition": name, "reason": str(exc.orig)[:200]})
            continue
        rows += n
        dropped.append(name)
    if dropped:
        log.info("expired partitions dropped", extra={"partitions": dropped, "rows": rows})
    return dropped, rows
