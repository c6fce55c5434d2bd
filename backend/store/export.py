"""Training export: one site's view-like events -> ``SessionData``, without a Python object per event.

The database does the grouping: one row per *session* comes back, carrying the session's item indices (and
ordering keys) as space-separated text, which numpy parses in bulk. Item ids are mapped to indices in SQL
through a temporary vocabulary table, so no per-event string ever reaches Python. The sessions are read
CHUNK_SESSIONS at a time (a server-side cursor on PostgreSQL) and each chunk is reduced at once to what training
keeps (int32 item indices), so beyond the result itself (4 bytes an event, 16 a session, held twice while the
chunks are joined at the end) memory does not grow with the number of events.

Sessions that look machine-made are left out of training. Anyone holding a site's publishable key can post events
without an Origin header (scripts, not browsers), up to the key's rate, so a flood of made-up sessions must not
teach the model. A session is dropped when it has more than ``max_session_events`` view-like events, or when at
least ``RATE_MIN_EVENTS`` of them come faster than ``max_events_per_second`` on average (from its first event to
its last, by client time where the event carries one, else by the time the server received it): people open one
page at a time; scripts do not wait. Both can be turned off with None.
"""
from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator

import numpy as np
from sqlalchemy import Connection, Engine, text

from backend.session_data import SessionData
from backend.store.tables import VIEW_LIKE

log = logging.getLogger(__name__)

CHUNK_SESSIONS = 20_000            # sessions read and reduced at a time
REMAP_SLICE = 1 << 20             # events re-indexed at a time
MAX_SESSION_EVENTS = 500           # view-like events in one session: beyond this, a script (or a stuck page)
MAX_EVENTS_PER_SECOND = 1.0        # sustained over the whole session...
RATE_MIN_EVENTS = 10               # ...of at least this many events (a click and its page view come together)


def export_sessions(engine: Engine, site_id: int, *, types: Iterable[str] = VIEW_LIKE,
                    since_ms: int | None = None, until_ms: int | None = None,
                    min_length: int = 2, max_session_events: int | None = MAX_SESSION_EVENTS,
                    max_events_per_second: float | None = MAX_EVENTS_PER_SECOND) -> SessionData:
    """The site's sessions in training order (by first received event), events in client time order.

    Consecutive repeats of one item in a session are collapsed (a ``rec_click`` and the ``view`` of the page it
    opens are one step for the model). Sessions that look machine-made (see the module's description) and
    sessions shorter than ``min_length`` after collapsing are dropped, and items that occur in no remaining session
    are left out of ``item_ids``.
    """
    t0 = time.perf_counter()
    types = sorted(set(types))
    where = ["e.site_id = :site", "e.item IS NOT NULL",
             "e.type IN (" + ", ".join(f"'{t}'" for t in types if t.isidentifier()) + ")"]
    params: dict = {"site": site_id}
    if since_ms is not None:
        where.append("e.received_ms >= :since")
        params["since"] = since_ms
    if until_ms is not None:
        where.append("e.received_ms < :until")
        params["until"] = until_ms
    cond = " AND ".join(where)
    kept_idx, kept_lengths, kept_t0, machine = [], [], [], 0
    with engine.connect() as conn:
        item_ids = _load_vocabulary(conn, cond, params)
        for chunk in _session_chunks(conn, cond, params):
            idx, lengths, sess_t0, m = _reduce(*chunk, min_length, max_session_events, max_events_per_second)
            kept_idx.append(idx)
            kept_lengths.append(lengths)
            kept_t0.append(sess_t0)
            machine += m
        conn.rollback()   # drops nothing permanent; ends the read transaction holding the temp table
    data = _assemble(item_ids, kept_idx, kept_lengths, kept_t0)
    log.info("training export", extra={"site": site_id, "sessions": data.n_sessions, "events": data.n_events,
                                       "items": data.n_items, "machine_made_sessions": machine,
                                       "seconds": round(time.perf_counter() - t0, 3)})
    return data


def _load_vocabulary(conn: Connection, cond: str, params: dict) -> np.ndarray:
    rows = conn.execute(text(f"SELECT DISTINCT e.item FROM events e WHERE {cond}"), params).scalars().all()
    item_ids = np.array(sorted(rows), dtype=object)
    conn.execute(text("DROP TABLE IF EXISTS export_vocab"))
    conn.execute(text("CREATE TEMPORARY TABLE export_vocab (item VARCHAR(256) PRIMARY KEY, idx INTEGER NOT NULL)"))
    if len(item_ids):
        conn.execute(text("INSERT INTO export_vocab (item, idx) VALUES (:item, :idx)"),
                     [{"item": it, "idx": i} for i, it in enumerate(item_ids)])
    return item_ids


def _session_chunks(conn: Connection, cond: str, params: dict) -> Iterator[tuple[np.ndarray, ...]]:
    """The sessions in training order, CHUNK_SESSIONS at a time (a server-side cursor on PostgreSQL), each chunk
    as arrays (first received ms, lengths) per session and (item index, time, id) per event."""
    t_expr = "COALESCE(e.client_ms, e.received_ms)"
    if conn.dialect.name == "postgresql":
        # ordered aggregates: the database guarantees the order
        order = f"ORDER BY {t_expr}, e.id"
        sql = (f"SELECT MIN(e.received_ms) AS t0, COUNT(*) AS n, string_agg(v.idx::text, ' ' {order}), "
               f"string_agg(({t_expr})::text, ' ' {order}), string_agg(e.id::text, ' ' {order}) "
               f"FROM events e JOIN export_vocab v ON v.item = e.item WHERE {cond} "
               f"GROUP BY e.session ORDER BY t0, e.session")
    else:
        # SQLite < 3.44 has no ORDER BY inside group_concat: feed it ordered rows, and carry the ordering
        # keys along so that _reduce checks (and, should SQLite ever reorder, restores) the order.
        sql = (f"SELECT MIN(s.received_ms) AS t0, COUNT(*) AS n, group_concat(s.idx, ' '), "
               f"group_concat(s.t, ' '), group_concat(s.id, ' ') FROM ("
               f"SELECT e.session AS session, e.received_ms AS received_ms, v.idx AS idx, {t_expr} AS t, "
               f"e.id AS id FROM events e JOIN export_vocab v ON v.item = e.item WHERE {cond} "
               f"ORDER BY e.session, t, e.id) s GROUP BY s.session ORDER BY t0, s.session")
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_SESSIONS).execute(text(sql), params)
    for chunk in result.partitions(CHUNK_SESSIONS):
        yield (np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk)),
               np.fromiter((r[1] for r in chunk), dtype=np.int64, count=len(chunk)),
               *(np.fromstring(" ".join(r[col] for r in chunk), dtype=np.int64, sep=" ") for col in (2, 3, 4)))


def machine_made(lengths: np.ndarray, first_ms: np.ndarray, last_ms: np.ndarray, max_session_events: int | None,
                 max_events_per_second: float | None) -> np.ndarray:
    """Per session: does it look machine-made (too many events, or too fast)? ``lengths`` are event counts."""
    out = np.zeros(len(lengths), dtype=bool)
    if max_session_events is not None:
        out |= lengths > max_session_events
    if max_events_per_second is not None:
        span_ms = (last_ms - first_ms).astype(np.float64)
        out |= (lengths >= RATE_MIN_EVENTS) & ((lengths - 1) * 1000.0 > max_events_per_second * span_ms)
    return out


def _reduce(sess_t0, lengths, idx, ts, ids, min_length: int, max_session_events: int | None = None,
            max_events_per_second: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One chunk of sessions -> what training keeps of it: (item indices as int32, session lengths, sessions'
    first received ms) of the sessions kept, and how many were dropped as machine-made."""
    if len(idx) != int(lengths.sum()):
        raise RuntimeError("training export: event count does not match the session lengths")
    session_of = np.repeat(np.arange(len(lengths)), lengths)
    order = np.lexsort((ids, ts, session_of))          # (session, time, id): a no-op when already ordered
    if np.any(order != np.arange(len(order))):
        idx, ts = idx[order], ts[order]
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    present = lengths > 0
    first_ms, last_ms = np.zeros(len(lengths), np.int64), np.zeros(len(lengths), np.int64)
    first_ms[present] = ts[starts[present]]
    last_ms[present] = ts[starts[present] + lengths[present] - 1]
    machine = machine_made(lengths, first_ms, last_ms, max_session_events, max_events_per_second)
    # collapse consecutive repeats of an item within a session
    keep = np.ones(len(idx), dtype=bool)
    keep[1:] = ~((idx[1:] == idx[:-1]) & (session_of[1:] == session_of[:-1]))
    idx, session_of = idx[keep], session_of[keep]
    lengths = np.bincount(session_of, minlength=len(lengths))
    # drop short sessions and machine-made ones
    long_enough = (lengths >= min_length) & ~machine
    return (idx[long_enough[session_of]].astype(np.int32), lengths[long_enough], sess_t0[long_enough],
            int(machine.sum()))


def _assemble(item_ids: np.ndarray, idx_parts: list, length_parts: list, t0_parts: list) -> SessionData:
    """The kept chunks as one SessionData, items re-indexed to those that still occur. The parts' lists are
    emptied on the way (so each part is freed once copied)."""
    idx = _concatenate(idx_parts, np.int32)
    lengths, sess_t0 = _concatenate(length_parts, np.int64), _concatenate(t0_parts, np.int64)
    used = np.zeros(len(item_ids), dtype=bool)
    remap = np.zeros(len(item_ids), dtype=np.int32)
    for lo in range(0, len(idx), REMAP_SLICE):      # in slices: no int64 copy of every event
        used[idx[lo:lo + REMAP_SLICE]] = True
    remap[used] = np.arange(int(used.sum()), dtype=np.int32)
    for lo in range(0, len(idx), REMAP_SLICE):
        idx[lo:lo + REMAP_SLICE] = remap[idx[lo:lo + REMAP_SLICE]]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SessionData(item_ids=item_ids[used], items=idx, offsets=offsets,
                       start_times=sess_t0.astype(np.float64) / 1000.0)


def _concatenate(parts: list, dtype) -> np.ndarray:
    out = np.empty(sum(len(p) for p in parts), dtype=dtype)
    at = 0
    for i, p in enumerate(parts):
        out[at:at + len(p)] = p
        at += len(p)
        parts[i] = None
    parts.clear()
    return out
