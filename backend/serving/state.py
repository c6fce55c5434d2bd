"""In-memory session states: session id -> GRU hidden state, the items it has seen, when it was last used.

Bounded by bytes (a budget, e.g. ``UPNEXT_STATE_MB``) and by idle time (30 minutes by default); the least
recently used session is evicted first. States live in preallocated chunks of rows (a (CHUNK, S) float32 block
per chunk), not as one Python object each, so the bytes counted are the bytes held: chunks + the index (an
OrderedDict, measured with ``sys.getsizeof``) + the session-id strings and slot numbers it keeps alive. Chunks
are never freed: once the budget is reached, new sessions reuse the rows of evicted ones.

A process's memory may not hold a session's latest state (another worker served it, a restart, an eviction);
``resolve`` compares the request's ``history`` with what memory holds and rebuilds the state when they differ.
All methods are thread-safe; the GRU work of ``resolve``/``advance`` runs outside the lock.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

RECENT = 20  # item indices kept per session: the widget sends its last 20 item ids as `history`
IDLE_S = 30 * 60.0
CHUNK = 1024  # session rows allocated at a time
_INT_BYTES = 32  # a slot number (a Python int) in the index, as allocated
_ALIGN = 16  # Python's small-object allocator rounds sizes up to this
_CHUNK_OVERHEAD = 5 * 128  # the numpy array objects of a chunk (without their data)
_FIXED_BYTES = 4096  # the cache object, its lists and lock
# Worst case of what the index costs per session beyond its row: the id string (up to 64 characters), its slot
# number, and the OrderedDict's share right after it doubled its table (~120 bytes measured; 28 bytes per table
# slot at a load of 1/3, plus a 32-byte list node). Capacity is planned with it, so a resize never overruns.
_INDEX_BYTES_PER_SESSION = 128 + _INT_BYTES + 8 + 128


@dataclass(frozen=True)
class SessionState:
    """A copy of what memory holds for a session.

    state:   (S,) float32 hidden states of every layer
    recent:  (m,) int64 item indices the state has seen, oldest first, the last RECENT (20) of them
    seen:    items the state has seen in total (>= m)
    touched: clock seconds of the last use
    """
    state: np.ndarray
    recent: np.ndarray
    seen: int
    touched: float


def history_matches(held: SessionState, history: Sequence[int], complete: bool) -> bool:
    """Whether ``held`` is the state of a session whose request sent ``history`` (known item indices, oldest
    first). ``complete``: the widget sent its whole session (fewer ids than its window of 20), so the state must
    have seen exactly these items; otherwise the window has slid and memory (which saw the older items too)
    matches when its most recent items end with the request's."""
    k = len(history)
    if complete:
        return held.seen == k and np.array_equal(held.recent, history)
    return len(held.recent) >= k and np.array_equal(held.recent[len(held.recent) - k:], history)


class SessionStateCache:
    """Session id (str) -> SessionState, bounded by ``budget_bytes`` and ``idle_s``, LRU first out."""

    def __init__(self, state_size: int, budget_bytes: int, *, idle_s: float = IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if state_size < 1 or budget_bytes < 1:
            raise ValueError("state_size and budget_bytes must be positive")
        self.state_size = state_size
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._free: list[int] = []
        self._key_bytes = 0
        self._states: list[np.ndarray] = []   # per chunk: (rows, S) float32
        self._recent: list[np.ndarray] = []   # per chunk: (rows, RECENT) int32
        self._n_recent: list[np.ndarray] = []  # per chunk: (rows,) uint8
        self._seen: list[np.ndarray] = []     # per chunk: (rows,) int64
        self._touched: list[np.ndarray] = []  # per chunk: (rows,) float64
        self._row_bytes = 4 * state_size + 4 * RECENT + 1 + 8 + 8
        self._chunk_rows = CHUNK
        self.evictions = 0
        self.expirations = 0
        self.set_budget(budget_bytes)

    # ------------------------------------------------------------ public API

    def set_budget(self, budget_bytes: int) -> None:
        """Change the byte budget; sessions are evicted (LRU first) if the cache is now over it. Rows are never
        freed one by one: if the rows already allocated alone exceed the new budget, every session is dropped
        (requests rebuild them from their history)."""
        with self._lock:
            self.budget_bytes = int(budget_bytes)
            per_session = self._row_bytes + _INDEX_BYTES_PER_SESSION
            capacity = max(1, (self.budget_bytes - _FIXED_BYTES) // (per_session + _CHUNK_OVERHEAD // CHUNK + 1))
            if self._states and capacity < self._chunk_rows:
                self._clear()  # not even one chunk of the current size fits any more
            if not self._states:  # small budgets get small chunks, so that at least one chunk fits
                self._chunk_rows = min(CHUNK, capacity)
            self._max_chunks = max(1, capacity // self._chunk_rows)
            if len(self._states) > self._max_chunks:
                self._clear()  # rows are not freed one by one
            while len(self._slots) > self.capacity or (self._slots and self._bytes() > self.budget_bytes):
                self._evict_lru()

    def get(self, session: str) -> SessionState | None:
        """What memory holds for ``session`` (a copy), or None; counts as a use."""
        with self._lock:
            self._expire()
            slot = self._slots.get(session)
            if slot is None:
                return None
            self._slots.move_to_end(session)
            c, r = divmod(slot, self._chunk_rows)
            self._touched[c][r] = self._clock()
            return self._read(slot)

    def put(self, session: str, state: np.ndarray, recent: Sequence[int], seen: int) -> None:
        """Store ``session``'s state (S,) float32 after it has seen ``seen`` items, the last ones ``recent``
        (oldest first; only the last RECENT are kept)."""
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (self.state_size,):
            raise ValueError(f"a state is ({self.state_size},) float32, got {state.shape}")
        recent = np.asarray(recent, dtype=np.int64)[-RECENT:]
        with self._lock:
            self._expire()
            slot = self._slots.get(session)
            if slot is None:
                slot = self._new_slot(session)
            else:
                self._slots.move_to_end(session)
            c, r = divmod(slot, self._chunk_rows)
            self._states[c][r] = state
            self._recent[c][r, :len(recent)] = recent
            self._n_recent[c][r] = len(recent)
            self._seen[c][r] = seen
            self._touched[c][r] = self._clock()
            while len(self._slots) > 1 and self._bytes() > self.budget_bytes:  # ids longer than planned for
                self._evict_lru()

    def discard(self, session: str) -> None:
        with self._lock:
            slot = self._slots.pop(session, None)
            if slot is not None:
                self._release(session, slot)

    def resolve(self, session: str, history: Sequence[int], complete: bool,
                rebuild: Callable[[np.ndarray], np.ndarray]) -> tuple[SessionState, bool]:
        """The state to answer a request with: memory's if it matches ``history`` (known item indices, oldest
        first; see ``history_matches``), else ``rebuild(history)`` (a (S,) state), which is stored.
        Returns (state, rebuilt)."""
        history = np.asarray(history, dtype=np.int64)[-RECENT:]
        held = self.get(session)
        if held is not None and history_matches(held, history, complete):
            return held, False
        state = rebuild(history)
        self.put(session, state, history, len(history))
        return SessionState(state, history, len(history), self._clock()), True

    def advance(self, session: str, item: int, step: Callable[[np.ndarray, int], np.ndarray],
                zero: Callable[[], np.ndarray]) -> SessionState:
        """Feed a viewed ``item`` to the session's state (a zero state if memory has none): ``step(state, item)``
        gives the new state. Two concurrent calls for one session may lose one item; the next request's
        history check repairs that."""
        held = self.get(session)
        state = step(held.state if held is not None else zero(), item)
        recent = np.append(held.recent if held is not None else np.zeros(0, np.int64), item)[-RECENT:]
        seen = (held.seen if held is not None else 0) + 1
        self.put(session, state, recent, seen)
        return SessionState(state, recent, seen, self._clock())

    def expire(self) -> int:
        """Drop sessions idle for longer than ``idle_s``; returns how many."""
        with self._lock:
            return self._expire()

    def clear(self) -> None:
        """Forget every session and release all memory."""
        with self._lock:
            self._clear()

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, session: str) -> bool:
        return session in self._slots

    @property
    def capacity(self) -> int:
        """Most sessions held at once under the budget."""
        return self._max_chunks * self._chunk_rows

    @property
    def bytes_used(self) -> int:
        """Bytes held: allocated rows, the index, and the session ids and slot numbers it keeps alive."""
        with self._lock:
            return self._bytes()

    # ------------------------------------------------------------ internals (called with the lock held)

    def _bytes(self) -> int:
        chunks = len(self._states)
        return (_FIXED_BYTES + chunks * (self._chunk_rows * self._row_bytes + _CHUNK_OVERHEAD)
                + sys.getsizeof(self._slots) + self._key_bytes + _INT_BYTES * len(self._slots)
                + sys.getsizeof(self._free) + _INT_BYTES * len(self._free))

    def _clear(self) -> None:
        self._slots = OrderedDict()  # a new one: a dict never shrinks its table
        self._free.clear()
        self._key_bytes = 0
        for chunks in (self._states, self._recent, self._n_recent, self._seen, self._touched):
            chunks.clear()

    def _read(self, slot: int) -> SessionState:
        c, r = divmod(slot, self._chunk_rows)
        n = int(self._n_recent[c][r])
        return SessionState(self._states[c][r].copy(), self._recent[c][r, :n].astype(np.int64), int(self._seen[c][r]),
                            float(self._touched[c][r]))

    def _new_slot(self, session: str) -> int:
        key_bytes = _aligned(sys.getsizeof(session))
        if not self._free:
            rows = self._chunk_rows
            if len(self._states) >= self._max_chunks:
                self._evict_lru()  # full: reuse the least recently used session's row
            else:
                base = len(self._states) * rows
                self._states.append(np.zeros((rows, self.state_size), np.float32))
                self._recent.append(np.zeros((rows, RECENT), np.int32))
                self._n_recent.append(np.zeros(rows, np.uint8))
                self._seen.append(np.zeros(rows, np.int64))
                self._touched.append(np.zeros(rows, np.float64))
                self._free.extend(range(base + rows - 1, base - 1, -1))
        slot = self._free.pop()
        self._slots[session] = slot
        self._key_bytes += key_bytes
        return slot

    def _evict_lru(self) -> None:
        session, slot = self._slots.popitem(last=False)
        self._release(session, slot)
        self.evictions += 1

    def _release(self, session: str, slot: int) -> None:
        self._free.append(slot)
        self._key_bytes -= _aligned(sys.getsizeof(session))

    def _expire(self) -> int:
        limit = self._clock() - self.idle_s
        n = 0
        while self._slots:
            session, slot = next(iter(self._slots.items()))
            c, r = divmod(slot, self._chunk_rows)
            if self._touched[c][r] >= limit:
                break
            del self._slots[session]
            self._release(session, slot)
            n += 1
        self.expirations += n
        return n


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN
