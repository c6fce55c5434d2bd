"""Session files -> ``SessionData``, and test data aligned to a model's training items.

Two layouts are read:

- the GRU4Rec TSV layout: a header naming ``SessionId``, ``ItemId`` and ``Time`` (tab-separated, any column
  order, extra columns ignored), one event per row. Sessions are ordered by their first event's time (ties: the
  order in which they first appear in the file), events within a session by time (ties: file order).
- one session per line: item ids separated by blanks, sessions in file order (the file is assumed to be in time
  order already, as the SR-GNN-style datasets are). No times.

Item indices are given in order of first appearance in the ordered events.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.errors import UpnextError
from backend.session_data import SessionData

TSV_COLUMNS = ("SessionId", "ItemId", "Time")


class DataError(UpnextError):
    """A data file that is missing or not in a layout Upnext reads."""


def read_sessions(path: str | Path) -> SessionData:
    """Read either layout; the GRU4Rec TSV layout is recognised by its header."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, encoding="utf-8", errors="strict") as f:
        first = f.readline()
    if "SessionId" in (h.strip() for h in first.split("\t")):
        return read_gru4rec_tsv(path)
    return read_session_lines(path)


def read_gru4rec_tsv(path: str | Path) -> SessionData:
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise DataError(f"{path}: empty file")
    header = [h.strip() for h in lines[0].split("\t")]
    missing = [c for c in TSV_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: the header must name the columns {', '.join(TSV_COLUMNS)} (tab-separated); "
                        f"missing {', '.join(missing)}")
    cols = [header.index(c) for c in TSV_COLUMNS]
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    if not rows:
        raise DataError(f"{path}: no events")
    bad = next((i for i, r in enumerate(rows) if len(r) < len(header)), None)
    if bad is not None:
        raise DataError(f"{path}: line {bad + 2} has {len(rows[bad])} columns, the header has {len(header)}")
    sessions = np.array([r[cols[0]] for r in rows])
    items = np.array([r[cols[1]].strip() for r in rows])
    try:
        times = np.array([r[cols[2]] for r in rows], dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: the Time column must hold numbers (unix seconds)") from None
    return sessions_from_events(sessions, items, times)


def sessions_from_events(sessions: np.ndarray, items: np.ndarray, times: np.ndarray) -> SessionData:
    """Events as three parallel arrays (session key, item id, time) -> SessionData in training order."""
    _, first_row, sess_code = np.unique(sessions, return_index=True, return_inverse=True)
    n_sess = len(first_row)
    start = np.full(n_sess, np.inf)
    np.minimum.at(start, sess_code, times)
    # order sessions by (start time, first appearance), events by (session rank, time, row)
    sess_order = np.lexsort((first_row, start))
    sess_rank = np.empty(n_sess, dtype=np.int64)
    sess_rank[sess_order] = np.arange(n_sess)
    rank = sess_rank[sess_code]
    order = np.lexsort((np.arange(len(items)), times, rank))
    item_ids, idx = _index_items(items[order])
    lengths = np.bincount(rank, minlength=n_sess)
    offsets = np.zeros(n_sess + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SessionData(item_ids=item_ids, items=idx, offsets=offsets, start_times=start[sess_order])


def read_session_lines(path: str | Path) -> SessionData:
    path = Path(path)
    tokens_per_line = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    tokens_per_line = [t for t in tokens_per_line if t]
    if not tokens_per_line:
        raise DataError(f"{path}: no sessions (expected one session per line: item ids separated by blanks)")
    lengths = np.fromiter((len(t) for t in tokens_per_line), dtype=np.int64, count=len(tokens_per_line))
    flat = np.array([tok for t in tokens_per_line for tok in t])
    item_ids, idx = _index_items(flat)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SessionData(item_ids=item_ids, items=idx, offsets=offsets,
                       start_times=np.full(len(lengths), np.nan))


def _index_items(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids object array in order of first appearance, (n,) int32 index of each id)."""
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    new_index = np.empty(len(uniq), dtype=np.int32)
    new_index[by_appearance] = np.arange(len(uniq), dtype=np.int32)
    item_ids = np.array([str(u) for u in uniq[by_appearance]], dtype=object)
    return item_ids, new_index[inverse.ravel()]


def align_to_items(data: SessionData, item_ids) -> SessionData:
    """Re-index ``data`` to a model's item ids (a list or array of str). Events whose item the model does not
    know are dropped; the rest of their session stays (spec §6). Sessions keep their order, even when empty."""
    position = {str(k): i for i, k in enumerate(item_ids)}
    mapping = np.array([position.get(str(k), -1) for k in data.item_ids], dtype=np.int64)
    mapped = mapping[data.items] if data.n_events else np.zeros(0, np.int64)
    keep = mapped >= 0
    session_of = np.repeat(np.arange(data.n_sessions), data.lengths)
    lengths = np.bincount(session_of[keep], minlength=data.n_sessions)
    offsets = np.zeros(data.n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SessionData(item_ids=np.asarray(list(item_ids), dtype=object), items=mapped[keep].astype(np.int32),
                       offsets=offsets, start_times=data.start_times)
