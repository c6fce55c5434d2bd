"""A model bundle on disk and what serving makes of it: the GRU4Rec engine, plus the fallbacks that came with it
(item-to-item neighbours and the popularity order), all in the engine's item index space.

A model bundle is a GRU4Rec artifact directory that may hold ``itemknn/`` and ``popular/`` artifacts beside
its arrays (``upnext train`` writes both). Without ``popular/`` the popularity order comes from the GRU4Rec
manifest's support counts; without ``itemknn/`` item-to-item answers nothing and the chain moves on.

``check_servable`` is what publishing runs before a bundle may go live; ``registry.ModelRegistry`` loads live ones.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from backend.artifact import ArtifactError, load_artifact
from backend.errors import UpnextError
from backend.serving.engine import FORMAT, GRU4RecEngine

log = logging.getLogger(__name__)


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
