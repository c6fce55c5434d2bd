"""Top-k requests made by several threads at the same time are scored in one pass over the item matrix.

The first thread to ask becomes the leader: it scores everything pending (up to ``max_batch`` requests) with
``engine.top_k_many`` and hands the answers out; requests that arrive meanwhile wait, and one of them leads the
next pass. Nobody waits on purpose: under light load every request is scored alone at once, and as load grows
the passes carry more requests each, which is when one pass over the matrix for many sessions pays
(tests/bench/bench_engine.py: about 1.25x the throughput at layers 100 and 2x at layers 512 on 100k-1M items).
Requests are batched only with others that use the same availability mask (the same array object) and the same
kind: GRU4Rec next items (``top_k``) or the GRU4Rec + item-to-item blend (``blend_top_k``, each request with its
own context neighbours and weight). A blend pass holds a (batch, items) score matrix, so its batches are capped
at BLEND_SCORES scores (32 at 43k items, 8 at 1M).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from backend.serving.engine import GRU4RecEngine


BLEND_SCORES = 8 << 20      # float32 scores a blend pass may hold (32 MiB)


@dataclass
class _Request:
    state: np.ndarray
    k: int
    exclude: np.ndarray
    available: np.ndarray | None
    blend: tuple | None = None        # (neighbours, nweights, weight) for a blend request
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: tuple | None = None
    error: BaseException | None = None


class ScoreBatcher:
    """``top_k(state, k, exclude, available)``: the same answer as ``engine.top_k``, scored together with the
    requests of other threads that arrive while a pass is running."""

    def __init__(self, engine: GRU4RecEngine, *, max_batch: int = 32):
        self.engine = engine
        self.max_batch = max_batch
        self._pending: list[_Request] = []
        self._leading = False
        self._lock = threading.Lock()
        self.passes = 0            # scoring passes made (requests / passes = mean batch size)
        self.requests = 0

    def top_k(self, state: np.ndarray, k: int, exclude=(), available: np.ndarray | None = None):
        state, k, exclude, _ = self.engine.check_request(state, k, exclude, available)  # bad input: this one only
        return self._wait(_Request(state, k, exclude, available))

    def blend_top_k(self, state: np.ndarray, k: int, neighbours, nweights, w: float, exclude=(),
                    available: np.ndarray | None = None):
        """The same answer as ``engine.blend_top_k``, scored together with other blend requests."""
        state, k, exclude, _ = self.engine.check_request(state, k, exclude, available)
        nb, nw = self.engine.check_context(neighbours, nweights)
        return self._wait(_Request(state, k, exclude, available, (nb, nw, float(w))))

    def _wait(self, req: _Request):
        with self._lock:
            self._pending.append(req)
            if not self._leading:
                self._leading = req.lead = True
        while req.result is None and req.error is None:
            if req.lead:              # this thread runs the next pass (which may or may not hold its request)
                req.lead = False
                self._lead()
            else:                     # woken when answered, or when handed the lead
                req.done.wait()
                req.done.clear()
        if req.error is not None:
            raise req.error
        return req.result

    def _lead(self) -> None:
        with self._lock:
            first = self._pending[0]
            mask, blending = first.available, first.blend is not None
            cap = max(1, min(self.max_batch, BLEND_SCORES // self.engine.n_items)) if blending else self.max_batch
            batch = [r for r in self._pending
                     if r.available is mask and (r.blend is not None) == blending][:cap]
            taken = set(map(id, batch))
            self._pending = [r for r in self._pending if id(r) not in taken]
        try:
            self._score(batch)
        finally:
            with self._lock:
                if self._pending:                  # hand over: the oldest waiting request leads the next pass
                    nxt = self._pending[0]
                    nxt.lead = True
                    nxt.done.set()
                else:
                    self._leading = False
            for r in batch:
                r.done.set()

    def _score(self, batch: list[_Request]) -> None:
        self.passes += 1
        self.requests += len(batch)
        try:
            r = batch[0]
            if len(batch) == 1 and r.blend is not None:
                r.result = self.engine.blend_top_k(r.state, r.k, *r.blend, r.exclude, r.available)
                return
            if len(batch) == 1:
                r.result = self.engine.top_k(r.state, r.k, r.exclude, r.available)
                return
            k = max(r.k for r in batch)
            states, excludes = np.stack([r.state for r in batch]), [r.exclude for r in batch]
            if r.blend is not None:
                items, scores = self.engine.blend_top_k_many(
                    states, k, [q.blend[0] for q in batch], [q.blend[1] for q in batch],
                    [q.blend[2] for q in batch], excludes, r.available)
            else:
                items, scores = self.engine.top_k_many(states, k, excludes, r.available)
            for r, i, s in zip(batch, items, scores):
                keep = i >= 0
                r.result = (i[keep][:r.k].copy(), s[keep][:r.k].copy())
        except BaseException as exc:  # noqa: BLE001  handed to every request of the pass
            for r in batch:
                r.error = exc
