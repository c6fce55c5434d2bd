"""The running experiment of each placement, from memory, for the per-request lookups of serving."""
from __future__ import annotations

import threading

from backend.experiments.assignment import RunningExperiment
from backend.store.db import Engine
from backend.store.experiments import running_experiments


class ExperimentDirectory:
    """The running experiment of each placement, from memory only: a lookup is a dict access and never touches
    the database. ``refresh`` (the background task, every ``refresh_s``) reloads every site, so changes made by
    another process show within that time; ``invalidate`` reloads a site at once after this process's own
    change. While the database cannot answer, the last experiments loaded keep being served."""

    def __init__(self, engine: Engine, *, refresh_s: float = 2.0):
        self._engine, self.refresh_s = engine, refresh_s
        self._cache: dict[int, dict[str, RunningExperiment]] = {}
        self._lock = threading.Lock()

    def running(self, site_id: int, placement: str) -> RunningExperiment | None:
        return self._cache.get(site_id, {}).get(placement)

    def refresh(self) -> None:
        loaded = self._load(None)
        with self._lock:
            self._cache = loaded

    def invalidate(self, site_id: int | None = None) -> None:
        """Reload ``site_id`` (None: every site) now."""
        if site_id is None:
            self.refresh()
            return
        loaded = self._load(site_id)
        with self._lock:
            self._cache = {**self._cache, site_id: loaded.get(site_id, {})}

    def _load(self, site_id: int | None) -> dict[int, dict[str, RunningExperiment]]:
        out: dict[int, dict[str, RunningExperiment]] = {}
        for e in running_experiments(self._engine, site_id):
            out.setdefault(e.site_id, {})[e.placement] = RunningExperiment(e.id, e.salt, e.arms)
        return out
