"""The running experiment of each placement, from memory, for the per-request lookups of serving."""
from __future__ import annotations

import threading
import time

from backend.experiments.assignment import RunningExperiment
from backend.store.db import Engine
from backend.store.experiments import running_experiments


class ExperimentDirectory:
    """The running experiment of each placement, from memory; reloaded every ``refresh_s`` (changes made by
    another process show within that time) and at once after ``invalidate``. A lookup is a dict access."""

    def __init__(self, engine: Engine, *, refresh_s: float = 2.0):
        self._engine, self._refresh_s = engine, refresh_s
        self._cache: dict[int, tuple[float, dict[str, RunningExperiment]]] = {}
        self._lock = threading.Lock()

    def running(self, site_id: int, placement: str) -> RunningExperiment | None:
        loaded = self._cache.get(site_id)
        if loaded is None or time.monotonic() - loaded[0] > self._refresh_s:
            running = {e.placement: RunningExperiment(e.id, e.salt, e.arms)
                       for e in running_experiments(self._engine, site_id)}
            with self._lock:
                self._cache[site_id] = loaded = (time.monotonic(), running)
        return loaded[1].get(placement)

    def invalidate(self, site_id: int | None = None) -> None:
        with self._lock:
            if site_id is None:
                self._cache.clear()
            else:
                self._cache.pop(site_id, None)
