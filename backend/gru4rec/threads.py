"""How many BLAS threads the fast training step uses, chosen by measuring while training.

Splitting a step's matrix products over cores pays only when the products are large and the cores are free:
the rsc15 setting (~40 MFLOP a step) runs fastest on one thread; the Diginetica preset (~2 GFLOP) gains ~25%
from two idle cores but loses 2-8x when another process holds one of them (the threads wait for each other).
A machine shared with a web server is exactly that case, so the choice is re-measured as training goes:
each candidate runs for ``probe_seconds`` (at least ``probe_steps`` steps) and is rated by its median step
time, which ignores the odd slow step (the first ones, a redraw of the sample store); the fastest then runs for
``exploit_seconds``, and so on.
"""
from __future__ import annotations

import os
import statistics
import time

from threadpoolctl import ThreadpoolController

from backend.gru4rec.params import Hyperparameters

SMALL_STEP_FLOP = 1e8


def step_flop(params: Hyperparameters) -> float:
    """Rough floating-point operations of one full training step (the products dominate)."""
    M, S, H = params.batch_size, params.n_sample, params.layers[-1]
    return 6.0 * M * (M + S) * H + sum(18.0 * M * h * h for h in params.layers)


def thread_candidates(params: Hyperparameters, cores: int | None = None) -> list[int]:
    cores = cores or len(os.sched_getaffinity(0))
    return [1] if step_flop(params) < SMALL_STEP_FLOP or cores == 1 else [1, cores]


class BlasThreads:
    """Sets the BLAS thread count; with several candidates, keeps the one measured fastest (events/s)."""

    def __init__(self, candidates: list[int], *, probe_seconds: float = 0.5, probe_steps: int = 5,
                 exploit_seconds: float = 20.0, clock=time.perf_counter):
        self.clock = clock
        self.libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self.original = [lib.num_threads for lib in self.libs]
        self.candidates = candidates
        self.probe_seconds, self.probe_steps, self.exploit_seconds = probe_seconds, probe_steps, exploit_seconds
        self.rates: dict[int, float] = {}
        self.history: list[tuple[int, float]] = []       # (threads, events/s) of every probe
        self._probe_queue = list(candidates) if len(candidates) > 1 else []
        self._set(self._probe_queue.pop(0) if self._probe_queue else candidates[0])
        self._probing = len(candidates) > 1

    @property
    def current(self) -> int:
        return self._threads

    def _set(self, n: int) -> None:
        for lib in self.libs:
            lib.set_num_threads(n)
        self._threads = n
        self._since = self._last = self.clock()
        self._pairs = 0
        self._durations: list[float] = []

    def step_done(self, pairs: int) -> None:
        """Call after each step with the rows it trained."""
        if len(self.candidates) == 1:
            return
        now = self.clock()
        self._pairs += pairs
        self._durations.append(now - self._last)
        self._last = now
        elapsed = now - self._since
        if self._probing and elapsed >= self.probe_seconds and len(self._durations) >= self.probe_steps:
            rate = self._pairs / len(self._durations) / statistics.median(self._durations)
            self.rates[self._threads] = rate
            self.history.append((self._threads, rate))
            if self._probe_queue:
                self._set(self._probe_queue.pop(0))
            else:
                self._probing = False
                self._set(max(self.rates, key=self.rates.get))
        elif not self._probing and elapsed >= self.exploit_seconds:
            self._probing = True
            self._probe_queue = [n for n in self.candidates if n != self._threads]
            self._set(self._threads)                    # measure the incumbent afresh first

    def close(self) -> None:
        for lib, n in zip(self.libs, self.original):
            lib.set_num_threads(n)
