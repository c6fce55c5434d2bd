"""PostgreSQL query plans of the store's real queries (issue 16, part 4): run a function of backend/store with the
statements it sends recorded, then ``EXPLAIN (FORMAT JSON)`` each of them with the same parameters and reduce the
plan to what matters at volume: which tables or partitions it reads, and how (sequential scan or which index)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, event

SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


@dataclass(frozen=True)
class Scan:
    relation: str       # the table or partition read
    how: str            # "Seq Scan", "Index Scan", ...
    index: str | None   # the index used (for a bitmap scan: the bitmap index scans' indexes)


@contextmanager
def recorded(engine: Engine):
    """Record (statement, parameters) of every statement sent through ``engine`` inside the block."""
    sent: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _walk(node: dict, out: list[Scan]) -> None:
    kind = node["Node Type"]
    if kind in SCANS:
        index = node.get("Index Name")
        if kind == "Bitmap Heap Scan":
            found: list[str] = []
            stack = list(node.get("Plans", []))
            while stack:
                n = stack.pop()
                if n.get("Index Name"):
                    found.append(n["Index Name"])
                stack.extend(n.get("Plans", []))
            index = ",".join(sorted(found)) or None
        out.append(Scan(node["Relation Name"], kind, index))
    for child in node.get("Plans", []):
        _walk(child, out)


def explain(engine: Engine, statement: str, parameters) -> list[Scan]:
    """The scans of the plan PostgreSQL makes for ``statement`` with ``parameters``."""
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    scans: list[Scan] = []
    _walk(plan[0]["Plan"], scans)
    return scans


def describe(scans: list[Scan]) -> str:
    """One line: ``relation: how [index]`` per scan."""
    return "; ".join(f"{s.relation}: {s.how}" + (f" [{s.index}]" if s.index else "") for s in scans)


def fill(engine: Engine, site_id: int, *, start_ms: int, end_ms: int, events: int, served: int,
         experiment_id: int | None = None, experiment_from_ms: int | None = None) -> None:
    """Spread ``events`` view events and ``served`` served lists (one session a minute, a quarter with a
    fallback) evenly over [start_ms, end_ms), in SQL (generate_series), then ANALYZE. Served lists from
    ``experiment_from_ms`` on, one in ten, belong to experiment ``experiment_id``."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (site_id, session, type, item, client_ms, received_ms) "
            "SELECT %(s)s, 's' || lpad((t / 60000)::text, 21, '0'), 'view', 'I' || (g %% 5000), t, t FROM "
            "(SELECT g, %(a)s + g::bigint * %(span)s / %(n)s AS t FROM generate_series(0, %(n)s - 1) g) x",
            {"s": site_id, "a": start_ms, "span": end_ms - start_ms, "n": events})
        conn.exec_driver_sql(
            "INSERT INTO served_lists (rec, site_id, session, placement, algorithm, experiment_id, fallback, items, "
            "served_ms) SELECT 'r' || g, %(s)s, 's' || lpad((t / 60000)::text, 21, '0'), 'home', 'popular', "
            "CASE WHEN g %% 10 = 0 AND t >= %(e_from)s::bigint THEN %(e)s::integer END, "
            "CASE WHEN g %% 4 = 0 THEN 'cold_session:popular' END, '[]', t FROM "
            "(SELECT g, %(a)s + g::bigint * %(span)s / %(n)s AS t FROM generate_series(0, %(n)s - 1) g) x",
            {"s": site_id, "a": start_ms, "span": end_ms - start_ms, "n": served, "e": experiment_id,
             "e_from": experiment_from_ms if experiment_from_ms is not None else end_ms})
        conn.exec_driver_sql("ANALYZE events")
        conn.exec_driver_sql("ANALYZE served_lists")


def holding_rows(engine: Engine) -> set[str]:
    """The tables and partitions (of events and served lists) that hold rows, by their statistics."""
    with engine.connect() as conn:
        return set(conn.exec_driver_sql(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples > 0 AND "
            "(relname LIKE 'events%%' OR relname LIKE 'served_lists%%')").scalars())
