"""The models that serve each site: the live GRU4Rec engine with its session states, plus the fallbacks that
came with it (item-to-item neighbours and the popularity order), all in the engine's item index space.

A model bundle is a GRU4Rec artifact directory that may hold ``itemknn/`` and ``popular/`` artifacts beside
its arrays (``upnext train`` writes both). Without ``popular/`` the popularity order comes from the GRU4Rec
manifest's support counts; without ``itemknn/`` item-to-item answers nothing and the chain moves on.

``SiteModels.sync`` makes the sites' live models (``sites.live_model_id`` in the store) the served ones; the app
runs it at start-up, before the first request, and every few seconds after, so a model promoted by any process
(the admin page, ``upnext model publish``) is hot-swapped into every server process.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from backend.artifact import ArtifactError, load_artifact
from backend.errors import UpnextError
from backend.serving.batching import ScoreBatcher
from backend.serving.engine import FORMAT, GRU4RecEngine
from backend.serving.registry import LiveModel, ModelRegistry
from backend.store.trained_models import live_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiteModel:
    """Everything one request needs from a site's model; taken once per request, never mutated."""
    model_id: int
    live: LiveModel
    popular: np.ndarray               # (m,) int64 engine item indices, most popular first
    neighbours: np.ndarray | None     # (n_items, k) int64 engine item indices per item, -1 = none
    scorer: ScoreBatcher              # top-k of concurrent requests in shared passes

    @property
    def engine(self) -> GRU4RecEngine:
        return self.live.engine


def load_fallbacks(engine: GRU4RecEngine) -> tuple[np.ndarray, np.ndarray | None]:
    """(popular order, neighbours) of the bundle at ``engine.path``, remapped to the engine's item indices."""
    path = Path(engine.path)
    popular_dir = path / "popular"
    if (popular_dir / "manifest.json").exists():
        art = load_artifact(popular_dir, expect_format="upnext-popular")
        scores = _remap_values(engine, art.item_ids, np.asarray(art["scores"], dtype=np.float64))
        popular = _popular_order(scores)
    else:
        popular = popular_from_manifest(engine)
    knn_dir = path / "itemknn"
    if not (knn_dir / "manifest.json").exists():
        return popular, None
    art = load_artifact(knn_dir, expect_format="upnext-itemknn")
    to_engine = np.array([engine.index(i) if engine.index(i) is not None else -1 for i in art.item_ids],
                         dtype=np.int64)
    raw = np.asarray(art["neighbours"], dtype=np.int64)
    mapped = np.where(raw >= 0, to_engine[np.maximum(raw, 0)], -1)
    neighbours = np.full((engine.n_items, raw.shape[1]), -1, dtype=np.int64)
    rows = to_engine >= 0
    neighbours[to_engine[rows]] = mapped[rows]
    return popular, neighbours


def check_servable(path: str | Path) -> GRU4RecEngine:
    """What serving will do with the bundle at ``path``: load it, answer a trial request, load its fallbacks.
    Returns the engine; raises UpnextError saying why the bundle cannot be served."""
    path = Path(path)
    if not path.is_dir():
        raise UpnextError(f"{path}: no such directory")
    try:
        eng = GRU4RecEngine.load(path, mmap=False)
        eng.top_k(eng.state_from_history([0]), 1)
        load_fallbacks(eng)
    except ArtifactError as exc:
        raise UpnextError(f"the bundle cannot be served: {exc}") from None
    return eng


def _remap_values(engine: GRU4RecEngine, item_ids: list[str], values: np.ndarray) -> np.ndarray:
    out = np.zeros(engine.n_items, dtype=np.float64)
    for item_id, v in zip(item_ids, values):
        idx = engine.index(item_id)
        if idx is not None:
            out[idx] = v
    return out


FLOAT16_FROM = 16_000_000    # "auto": item matrices of at least this many values are scored from a float16 copy


def load_engine(path: str | Path, *, item_matrix: str = "auto") -> GRU4RecEngine:
    """Load an engine; ``item_matrix`` "auto" halves the bytes read per request on large catalogues (float16
    copy of the item matrix) and keeps float32 on small ones, where it changes nothing measurable."""
    art = load_artifact(path, expect_format=FORMAT)
    if item_matrix == "auto":
        n, h = art["Wy"].shape
        item_matrix = "float16" if n * h >= FLOAT16_FROM else "float32"
    return GRU4RecEngine(art, item_matrix=item_matrix)


class SiteModels:
    """site id -> SiteModel. Reads never block; loads happen on the caller's thread (start-up or the sync task)."""

    def __init__(self, state_budget_bytes: int, *, item_matrix: str = "auto"):
        self._registry = ModelRegistry(state_budget_bytes, item_matrix=item_matrix, load=load_engine)
        self._models: dict[int, SiteModel] = {}
        self._failed: dict[int, int] = {}     # site -> model id that was refused (not retried until it changes)
        self._lock = threading.Lock()

    def get(self, site_id: int) -> SiteModel | None:
        return self._models.get(site_id)

    def publish(self, site_id: int, model_id: int, path: str | Path) -> SiteModel:
        """Load, check and prewarm the bundle, then swap it in; ArtifactError leaves the live model in place."""
        with self._lock:
            live = self._registry.publish(str(site_id), path)
            try:
                popular, neighbours = load_fallbacks(live.engine)
            except (ArtifactError, OSError, ValueError) as exc:
                log.warning("model fallbacks refused; serving without item-to-item",
                            extra={"site": site_id, "path": str(path), "reason": str(exc)})
                popular, neighbours = popular_from_manifest(live.engine), None
            model = SiteModel(model_id, live, popular, neighbours, ScoreBatcher(live.engine))
            self._models[site_id] = model          # the swap: one assignment
            return model

    @property
    def state_budget_bytes(self) -> int:
        return self._registry.state_budget_bytes

    def set_state_budget(self, budget_bytes: int) -> None:
        """Resize the session-state memory (UPNEXT_STATE_MB or the admin's setting) while serving."""
        self._registry.set_state_budget(budget_bytes)

    def withdraw(self, site_id: int) -> None:
        with self._lock:
            self._models.pop(site_id, None)
            self._registry.withdraw(str(site_id))

    def sync(self, engine: Engine) -> list[int]:
        """Serve every site's live model from the store; returns the sites whose model changed."""
        wanted = live_models(engine)
        changed = []
        for site_id, record in wanted.items():
            current = self._models.get(site_id)
            if (current is not None and current.model_id == record.id) or self._failed.get(site_id) == record.id:
                continue
            try:
                self.publish(site_id, record.id, record.path)
                self._failed.pop(site_id, None)
                changed.append(site_id)
            except ArtifactError as exc:
                self._failed[site_id] = record.id
                log.error("live model cannot be served; keeping the previous one",
                          extra={"site": site_id, "model": record.id, "reason": str(exc)})
        for site_id in set(self._models) - set(wanted):
            self.withdraw(site_id)
            changed.append(site_id)
        return changed


def popular_from_manifest(engine: GRU4RecEngine) -> np.ndarray:
    """Item indices by training support (the GRU4Rec manifest's counts), most popular first."""
    scores = np.asarray(engine.manifest.get("support") or np.zeros(engine.n_items), dtype=np.float64)
    if len(scores) != engine.n_items:
        raise ArtifactError(f"{engine.path}: manifest 'support' has {len(scores)} entries for "
                            f"{engine.n_items} items")
    return _popular_order(scores)


def _popular_order(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    return order[scores[order] > 0].astype(np.int64)
