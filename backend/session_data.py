"""Sessions as flat arrays: the layout the trainer, the baselines and the evaluation read.

Every source (the store's training export, GRU4Rec TSV files, one-session-per-line files) is turned into a
``SessionData``; nothing downstream builds a Python object per event.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SessionData:
    """Sessions in training order (by first event time, oldest first).

    item_ids:    (n_items,) object array of str: the external id of each item index
    items:       (n_events,) int32 item index of each event; session s is items[offsets[s]:offsets[s+1]]
    offsets:     (n_sessions + 1,) int64, offsets[0] == 0, non-decreasing, offsets[-1] == n_events
    start_times: (n_sessions,) float64 unix seconds of each session's first event; NaN where unknown
    """
    item_ids: np.ndarray
    items: np.ndarray
    offsets: np.ndarray
    start_times: np.ndarray

    def __post_init__(self) -> None:
        if self.items.dtype != np.int32 or self.offsets.dtype != np.int64:
            raise TypeError("items must be int32 and offsets int64")
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0 \
                or self.offsets[-1] != len(self.items) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, never decrease and end at len(items)")
        if len(self.start_times) != self.n_sessions:
            raise ValueError("start_times must have one entry per session")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= len(self.item_ids)):
            raise ValueError("item indices must be in [0, n_items)")

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def support(self) -> np.ndarray:
        """(n_items,) int64 number of events of each item."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    def session(self, s: int) -> np.ndarray:
        return self.items[self.offsets[s]:self.offsets[s + 1]]

    def time_range(self) -> tuple[float, float] | None:
        """(first, last) session start time in unix seconds, or None when the data has no times."""
        t = self.start_times[~np.isnan(self.start_times)]
        return (float(t.min()), float(t.max())) if len(t) else None

    @classmethod
    def from_sessions(cls, sessions: list[list], *, item_ids: np.ndarray | None = None,
                      start_times: np.ndarray | None = None) -> "SessionData":
        """Small data sets and tests: ``sessions`` are lists of external ids (or of indices into item_ids)."""
        if item_ids is None:
            vocab: dict = {}
            for s in sessions:
                for it in s:
                    vocab.setdefault(it, len(vocab))
            item_ids = np.array([str(k) for k in vocab], dtype=object)
            flat = [vocab[it] for s in sessions for it in s]
        else:
            flat = [int(it) for s in sessions for it in s]
        offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s) for s in sessions])
        times = np.full(len(sessions), np.nan) if start_times is None else np.asarray(start_times, float)
        return cls(np.asarray(item_ids, dtype=object), np.asarray(flat, dtype=np.int32), offsets, times)


def select_sessions(data: SessionData, keep: np.ndarray, *, reindex: bool) -> SessionData:
    """The sessions where ``keep`` (n_sessions,) bool is true; ``reindex`` drops items none of them holds."""
    lengths = data.lengths[keep]
    items = data.items[np.repeat(keep, data.lengths)]
    item_ids = data.item_ids
    if reindex:
        used, items = np.unique(items, return_inverse=True)
        item_ids = data.item_ids[used]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SessionData(item_ids=item_ids, items=np.asarray(items, dtype=np.int32), offsets=offsets,
                       start_times=data.start_times[keep])


def restrict_to_items(test: SessionData, item_ids) -> SessionData:
    """``test`` without the events of items outside ``item_ids``: evaluating two models with different
    vocabularies on the result scores both on exactly the same predictions."""
    allowed = set(str(i) for i in item_ids)
    keep_item = np.array([str(i) in allowed for i in test.item_ids], dtype=bool)
    keep = keep_item[test.items] if test.n_events else np.zeros(0, dtype=bool)
    session_of = np.repeat(np.arange(test.n_sessions), test.lengths)
    lengths = np.bincount(session_of[keep], minlength=test.n_sessions)
    offsets = np.zeros(test.n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SessionData(item_ids=test.item_ids, items=test.items[keep], offsets=offsets,
                       start_times=test.start_times)
