"""Session-parallel mini-batches (spec §1), computed once as flat arrays.

Slot b of the batch holds one session; at each step every active slot feeds its current event and predicts the
next one. A slot whose session has no pair left takes the next unused session with a zeroed hidden state (per
slot). Once no session is left, finished slots are removed (the others keep their order) and the batch shrinks
until it is empty: every pair of every session is used once, nothing is dropped. Sessions with fewer than two
events give no pair and are skipped.

The schedule says, for step t (rows ``step_ptr[t]:step_ptr[t+1]``, one row per active slot):

- ``event``: (n_pairs,) int64 index into ``SessionData.items`` of the input event; the target is ``event + 1``
- ``src``:   (n_pairs,) int32 row of the PREVIOUS step whose output state this row continues, -1 = zero state.
  This one array expresses both the per-slot resets and the shrinking.
- ``position``: (n_pairs,) int32 position of the input event within its session (0 = first event)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class Schedule:
    step_ptr: np.ndarray   # (n_steps + 1,) int64
    event: np.ndarray      # (n_pairs,) int64
    src: np.ndarray        # (n_pairs,) int32
    position: np.ndarray   # (n_pairs,) int32

    @property
    def n_steps(self) -> int:
        return len(self.step_ptr) - 1

    @property
    def n_pairs(self) -> int:
        return len(self.event)

    def rows(self, t: int) -> slice:
        return slice(int(self.step_ptr[t]), int(self.step_ptr[t + 1]))


def session_parallel(offsets: np.ndarray, batch_size: int) -> Schedule:
    """The schedule for sessions ``offsets`` ((n_sessions + 1,) int64) with ``batch_size`` slots."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n_pairs = int(np.maximum(np.diff(offsets) - 1, 0).sum())
    step_ptr, event, src, position = _schedule(offsets, batch_size, n_pairs)
    return Schedule(step_ptr, event, src, position)


@njit(cache=True)
def _schedule(offsets, batch_size, n_pairs):
    n_sessions = len(offsets) - 1
    event = np.empty(n_pairs, np.int64)
    src = np.empty(n_pairs, np.int32)
    position = np.empty(n_pairs, np.int32)
    step_ptr = np.empty(n_pairs + 1, np.int64)
    # active slots, in order: current input event, end of its session, start of its session, previous row
    cur = np.empty(batch_size, np.int64)
    end = np.empty(batch_size, np.int64)
    start = np.empty(batch_size, np.int64)
    prev = np.empty(batch_size, np.int32)
    next_s = 0
    n_active = 0
    while n_active < batch_size and next_s < n_sessions:
        if offsets[next_s + 1] - offsets[next_s] >= 2:
            start[n_active] = offsets[next_s]
            cur[n_active] = offsets[next_s]
            end[n_active] = offsets[next_s + 1]
            prev[n_active] = -1
            n_active += 1
        next_s += 1
    k = 0
    n_steps = 0
    step_ptr[0] = 0
    while n_active > 0:
        for b in range(n_active):
            event[k + b] = cur[b]
            src[k + b] = prev[b]
            position[k + b] = cur[b] - start[b]
        # advance; finished slots take the next session (reset) or are removed (the batch shrinks)
        kept = 0
        for b in range(n_active):
            if cur[b] + 2 < end[b]:
                cur[kept] = cur[b] + 1
                end[kept] = end[b]
                start[kept] = start[b]
                prev[kept] = b     # this step's row of slot b
                kept += 1
                continue
            while next_s < n_sessions and offsets[next_s + 1] - offsets[next_s] < 2:
                next_s += 1
            if next_s < n_sessions:
                start[kept] = offsets[next_s]
                cur[kept] = offsets[next_s]
                end[kept] = offsets[next_s + 1]
                prev[kept] = -1
                kept += 1
                next_s += 1
        k += n_active
        n_steps += 1
        step_ptr[n_steps] = k
        n_active = kept
    return step_ptr[:n_steps + 1].copy(), event, src, position
