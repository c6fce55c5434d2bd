"""What the request path reads per site from memory (placements, running experiments): a dict per site, reloaded
whole by the background task and per site after this process's own change; never read from the database per
request, and kept as it was while the database cannot answer."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from sqlalchemy import Engine

V = TypeVar("V")


class PerSiteDirectory(ABC, Generic[V]):
    def __init__(self, engine: Engine, *, refresh_s: float = 2.0):
        self._engine, self.refresh_s = engine, refresh_s
        self._cache: dict[int, dict[str, V]] = {}
        self._lock = threading.Lock()

    def lookup(self, site_id: int, name: str) -> V | None:
        return self._cache.get(site_id, {}).get(name)

    def refresh(self) -> None:
        """Reload every site (the background task, every ``refresh_s``)."""
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

    @abstractmethod
    def _load(self, site_id: int | None) -> dict[int, dict[str, V]]:
        """site id -> name -> value, for one site or (None) every site."""
