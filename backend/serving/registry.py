"""The live model of each site, swapped atomically while requests keep flowing.

A request takes ``registry.get(site_id)`` ONCE and uses that ``LiveModel`` (engine, its session states and the
bundle's fallbacks) to the end: a swap replaces the site's entry with a new, fully loaded and prewarmed LiveModel
in one assignment, so a reader sees the old model or the new one, never a mix. An artifact that cannot be served
(a file changed since publishing, missing files, shape mismatch, NaNs, wrong format or version, a failed trial
run, or any other failure while loading it) is refused with a logged reason and the live model stays. A failure
is the site's own: ``sync`` goes on with the other sites, and does not retry that model until another is live.

``sync`` makes the sites' live models (``sites.live_model_id`` in the store) the served ones; the app runs it at
start-up, before the first request, and every few seconds after, so a model promoted by any process on any host
(the admin page, ``upnext model publish``, a worker's training run) is hot-swapped into every server process.
``locate`` turns a model record into a local folder: the app's fetches the bundle from the store into this host's
cache when it lacks it (model_cache.py); a model that cannot be fetched is refused like one that cannot load.

Session states belong to a model (their size and meaning change with it), so each LiveModel has its own cache,
which starts empty: requests rebuild states from their ``history``. The state memory budget is shared evenly by
the sites that have a live model.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.artifact import ArtifactError
from backend.serving.batching import ScoreBatcher
from backend.serving.bundle import load_blend, load_engine, load_fallbacks, popular_from_manifest, verify_bundle
from backend.serving.engine import GRU4RecEngine
from backend.serving.state import SessionStateCache
from backend.store.trained_models import ModelRecord, live_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveModel:
    """Everything one request needs from a site's model; taken once per request, never mutated."""
    site: int
    model_id: int
    engine: GRU4RecEngine
    states: SessionStateCache         # session states computed with this engine
    popular: np.ndarray               # (m,) int64 engine item indices, most popular first
    neighbours: np.ndarray | None     # (n_items, k) int64 engine item indices per item, -1 = none
    scorer: ScoreBatcher              # top-k of concurrent requests in shared passes
    blend: np.ndarray | None = None   # (n_items, k) float32 normalised similarities of ``neighbours`` (gru4rec_blend)
    since: float = field(default_factory=time.time)   # when it went live (unix s)


class ModelRegistry:
    """site id -> LiveModel. Thread-safe; readers never block; loads happen on the caller's thread (start-up or
    the sync task)."""

    def __init__(self, state_budget_bytes: int, *, item_matrix: str = "auto", idle_s: float = 30 * 60.0,
                 load: Callable[..., GRU4RecEngine] = load_engine,
                 locate: Callable[[ModelRecord], Path] = lambda record: Path(record.path)) -> None:
        self.state_budget_bytes = state_budget_bytes
        self.item_matrix = item_matrix
        self.idle_s = idle_s
        self._load = load
        self._locate = locate                # record -> its local folder (model_cache.ModelCache.local fetches)
        self._live: dict[int, LiveModel] = {}
        self._failed: dict[int, int] = {}    # site -> model id that was refused (not retried until it changes)
        self._publishing = threading.Lock()  # one publish at a time; readers never take it

    def get(self, site: int) -> LiveModel | None:
        """The site's live model, or None if it has none (the caller falls back, e.g. to popular items)."""
        return self._live.get(site)

    def sites(self) -> list[int]:
        return sorted(self._live)

    def publish(self, site: int, model_id: int, path: str | Path) -> LiveModel:
        """Load, check, prewarm and trial-run the bundle at ``path``, then make it the site's live model.
        Raises ArtifactError (logged with the reason) if it cannot be served, whatever failed; the live model then
        stays. A published bundle's files are verified against their recorded hashes before any is mapped."""
        with self._publishing:
            try:
                if not verify_bundle(path):
                    log.warning("model files unverified: registered before publishing recorded their hashes; "
                                "publish it again to have them checked", extra={"site": site, "path": str(path)})
                engine = self._load(path, item_matrix=self.item_matrix)
                engine.prewarm()
                _trial_run(engine)
            except ArtifactError as exc:
                self._refused(site, path, str(exc))
                raise
            except Exception as exc:  # any failure of one bundle is that bundle's refusal, never the server's
                self._refused(site, path, f"{type(exc).__name__}: {exc}")
                raise ArtifactError(f"{path}: cannot be served ({type(exc).__name__}: {exc})") from exc
            try:
                popular, neighbours = load_fallbacks(engine)
                blend = load_blend(engine) if neighbours is not None else None
            except Exception as exc:  # the model itself is fine: serve it without its fallbacks
                log.warning("model fallbacks refused; serving without item-to-item",
                            extra={"site": site, "path": str(path), "reason": f"{type(exc).__name__}: {exc}"})
                blend = None
                try:
                    popular, neighbours = popular_from_manifest(engine), None
                except ArtifactError:
                    popular, neighbours = np.zeros(0, np.int64), None
            n_sites = len(self._live) + (site not in self._live)
            budget = self.state_budget_bytes // n_sites
            new = LiveModel(site, model_id, engine, SessionStateCache(engine.state_size, budget, idle_s=self.idle_s),
                            popular, neighbours, ScoreBatcher(engine), blend)
            for other in self._live.values():
                if other.site != site:
                    other.states.set_budget(budget)
            old = self._live.get(site)
            self._live[site] = new  # the swap: one assignment
            log.info("model live", extra={"site": site, "model": model_id, "path": str(path),
                                          "version": engine.version, "items": engine.n_items,
                                          "layers": list(engine.layers),
                                          "replaced": old.engine.version if old else None})
            return new

    def add_catalogue_items(self, site: int, records: list[dict]) -> LiveModel | None:
        """Give the catalogue items the site's live model does not know a vector from their features (a model with
        item features; else nothing changes): the same model, session states and fallbacks, with the new items
        appended (no item-to-item neighbours). ``records``: the whole catalogue (id, title, price, category,
        attributes); items that left it are dropped from the appended ones."""
        live = self._live.get(site)
        if live is None or live.engine.features is None:
            return live
        engine = live.engine.with_new_items(records)
        if engine.item_ids == live.engine.item_ids:
            return live
        neighbours = live.neighbours
        if neighbours is not None:
            neighbours = np.concatenate([neighbours[:engine.trained_items],
                                         np.full((engine.n_items - engine.trained_items, neighbours.shape[1]), -1,
                                                 neighbours.dtype)])
        blend = live.blend
        if blend is not None:
            blend = np.concatenate([blend[:engine.trained_items],
                                    np.zeros((engine.n_items - engine.trained_items, blend.shape[1]), blend.dtype)])
        new = dataclasses.replace(live, engine=engine, neighbours=neighbours, scorer=ScoreBatcher(engine),
                                  blend=blend)
        with self._publishing:
            if self._live.get(site) is not live:             # a publish came first: its model takes the items next
                return self._live.get(site)
            self._live[site] = new
        log.info("new catalogue items scored by their features",
                 extra={"site": site, "model": live.model_id, "items": engine.n_items - engine.trained_items})
        return new

    def set_state_budget(self, budget_bytes: int) -> None:
        """Change the memory budget of the session states (UPNEXT_STATE_MB or the admin's setting), shared evenly
        by the sites with a live model (now, and for models published later); sessions are evicted LRU first
        where a cache is now over."""
        with self._publishing:
            self.state_budget_bytes = int(budget_bytes)
            live = list(self._live.values())
            for model in live:
                model.states.set_budget(self.state_budget_bytes // len(live))

    def withdraw(self, site: int) -> None:
        """Stop serving a model for ``site`` (its requests fall back)."""
        with self._publishing:
            if self._live.pop(site, None) is not None and self._live:
                budget = self.state_budget_bytes // len(self._live)
                for other in self._live.values():
                    other.states.set_budget(budget)

    def sync(self, engine) -> list[int]:
        """Serve every site's live model from the store; returns the sites whose model changed."""
        wanted = live_models(engine)
        changed = []
        for site_id, record in wanted.items():
            current = self._live.get(site_id)
            if (current is not None and current.model_id == record.id) or self._failed.get(site_id) == record.id:
                continue
            try:
                self.publish(site_id, record.id, self._locate(record))
                self._failed.pop(site_id, None)
                changed.append(site_id)
            except Exception as exc:  # one site's model never stops the others' (publish wraps what it can)
                self._failed[site_id] = record.id
                log.error("live model cannot be served; keeping the previous one",
                          extra={"site": site_id, "model": record.id, "reason": str(exc),
                                 "previous": current.model_id if current else None})
        for site_id in set(self._live) - set(wanted):
            self.withdraw(site_id)
            changed.append(site_id)
        return changed

    def _refused(self, site: int, path: str | Path, reason: str) -> None:
        live = self._live.get(site)
        log.warning("model refused", extra={"site": site, "path": str(path), "reason": reason,
                                            "live": live.engine.version if live else None})


def _trial_run(engine: GRU4RecEngine) -> None:
    """Answer a few requests before going live: weights that overflow give non-finite states or scores."""
    state = engine.state_from_history([0, engine.n_items - 1, engine.n_items // 2])
    items, scores = engine.top_k(state, min(20, engine.n_items))
    if not (np.isfinite(state).all() and np.isfinite(scores).all()) or len(items) == 0:
        raise ArtifactError(f"{engine.path}: a trial request gave non-finite states or scores")
