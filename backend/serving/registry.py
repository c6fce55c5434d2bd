"""The live model of each site, swapped atomically while requests keep flowing.

A request takes ``registry.live(site)`` ONCE and uses that ``LiveModel`` (engine + its session states) to the
end: a swap replaces the site's entry with a new, fully loaded and prewarmed LiveModel in one assignment, so a
reader sees the old model or the new one, never a mix. An artifact that cannot be served (missing files, shape
mismatch, NaNs, wrong format or version, a failed trial run) is refused with a logged reason and the live model
stays.

Session states belong to a model (their size and meaning change with it), so each LiveModel has its own cache,
which starts empty: requests rebuild states from their ``history``. The state memory budget is shared evenly by
the sites that have a live model.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.artifact import ArtifactError
from backend.serving.engine import GRU4RecEngine
from backend.serving.state import SessionStateCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveModel:
    """What serves one site: the engine, the session states computed with it, when it went live (unix s)."""
    site: str
    engine: GRU4RecEngine
    states: SessionStateCache
    since: float = field(default_factory=time.time)


class ModelRegistry:
    """site name -> LiveModel. Thread-safe; readers never block."""

    def __init__(self, state_budget_bytes: int, *, item_matrix: str = "float32", idle_s: float = 30 * 60.0,
                 load: Callable[..., GRU4RecEngine] = GRU4RecEngine.load) -> None:
        self.state_budget_bytes = state_budget_bytes
        self.item_matrix = item_matrix
        self.idle_s = idle_s
        self._load = load
        self._live: dict[str, LiveModel] = {}
        self._publishing = threading.Lock()  # one publish at a time; readers never take it

    def live(self, site: str) -> LiveModel | None:
        """The site's live model, or None if it has none (the caller falls back, e.g. to popular items)."""
        return self._live.get(site)

    def sites(self) -> list[str]:
        return sorted(self._live)

    def publish(self, site: str, path: str | Path) -> LiveModel:
        """Load, check, prewarm and trial-run the artifact at ``path``, then make it the site's live model.
        Raises ArtifactError (logged with the reason) if it cannot be served; the live model then stays."""
        with self._publishing:
            try:
                engine = self._load(path, item_matrix=self.item_matrix)
                engine.prewarm()
                _trial_run(engine)
            except ArtifactError as exc:
                self._refused(site, path, str(exc))
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._refused(site, path, f"{type(exc).__name__}: {exc}")
                raise ArtifactError(f"{path}: cannot be served ({exc})") from exc
            n_sites = len(self._live) + (site not in self._live)
            budget = self.state_budget_bytes // n_sites
            new = LiveModel(site, engine, SessionStateCache(engine.state_size, budget, idle_s=self.idle_s))
            for other in self._live.values():
                if other.site != site:
                    other.states.set_budget(budget)
            old = self._live.get(site)
            self._live[site] = new  # the swap: one assignment
            log.info("model live", extra={"site": site, "path": str(path), "version": engine.version,
                                          "items": engine.n_items, "layers": list(engine.layers),
                                          "replaced": old.engine.version if old else None})
            return new

    def set_state_budget(self, budget_bytes: int) -> None:
        """Change the memory budget of the session states, shared evenly by the sites with a live model (now,
        and for models published later); sessions are evicted LRU first where a cache is now over."""
        with self._publishing:
            self.state_budget_bytes = int(budget_bytes)
            live = list(self._live.values())
            for model in live:
                model.states.set_budget(self.state_budget_bytes // len(live))

    def withdraw(self, site: str) -> None:
        """Stop serving a model for ``site`` (its requests fall back)."""
        with self._publishing:
            if self._live.pop(site, None) is not None and self._live:
                budget = self.state_budget_bytes // len(self._live)
                for other in self._live.values():
                    other.states.set_budget(budget)

    def _refused(self, site: str, path: str | Path, reason: str) -> None:
        live = self._live.get(site)
        log.warning("model refused", extra={"site": site, "path": str(path), "reason": reason,
                                            "live": live.engine.version if live else None})


def _trial_run(engine: GRU4RecEngine) -> None:
    """Answer a few requests before going live: weights that overflow give non-finite states or scores."""
    state = engine.state_from_history([0, engine.n_items - 1, engine.n_items // 2])
    items, scores = engine.top_k(state, min(20, engine.n_items))
    if not (np.isfinite(state).all() and np.isfinite(scores).all()) or len(items) == 0:
        raise ArtifactError(f"{engine.path}: a trial request gave non-finite states or scores")
