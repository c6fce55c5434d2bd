"""A model bundle on disk and what serving makes of it: the GRU4Rec engine, plus the fallbacks that came with it
(item-to-item neighbours and the popularity order), all in the engine's item index space.

A model bundle is a GRU4Rec artifact directory that may hold ``itemknn/`` and ``popular/`` artifacts beside
its arrays (``upnext train`` writes both). Without ``popular/`` the popularity order comes from the GRU4Rec
manifest's support counts; without ``itemknn/`` item-to-item answers nothing and the chain moves on.

``check_servable`` is what publishing runs before a bundle may go live; ``registry.ModelRegistry`` loads live ones.

A published bundle (backend/publishing.py) is a copy in a folder the server owns, named by its content: it holds
``SHA256SUMS`` (``sha256sum`` format: the SHA-256 of every file of the bundle) and the folder's name is the
SHA-256 of that list. ``verify_bundle`` checks both, and every file, before anything of it is mapped.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np

from backend.artifact import MANIFEST, ArtifactError, array_files, load_artifact, read_manifest
from backend.blend import aligned_neighbours
from backend.errors import UpnextError
from backend.serving.engine import FORMAT, GRU4RecEngine

log = logging.getLogger(__name__)

SUMS = "SHA256SUMS"
DIGEST = re.compile(r"[0-9a-f]{64}")
FALLBACKS = ("popular", "itemknn")


def load_fallbacks(engine: GRU4RecEngine) -> tuple[np.ndarray, np.ndarray | None]:
    """(popular order, neighbours) of the bundle at ``engine.path``, remapped to the engine's item indices."""
    path = Path(engine.path)
    popular_dir = path / "popular"
    if (popular_dir / "manifest.json").exists():
        art = load_artifact(popular_dir, expect_format="upnext-popular")
        scores = art.arrays.get("scores")
        if scores is None or scores.shape != (len(_item_ids(art)),) or scores.dtype.kind not in "iuf":
            raise ArtifactError(f"{popular_dir}: 'scores' must be one number per item")
        scores = _remap_values(engine, art.item_ids, np.asarray(scores, dtype=np.float64))
        popular = _popular_order(scores)
    else:
        popular = popular_from_manifest(engine)
    knn_dir = path / "itemknn"
    if not (knn_dir / "manifest.json").exists():
        return popular, None
    art = load_artifact(knn_dir, expect_format="upnext-itemknn")
    raw = _checked_neighbours(art)
    to_engine = np.array([engine.index(i) if engine.index(i) is not None else -1 for i in art.item_ids],
                         dtype=np.int64)
    mapped = np.where(raw >= 0, to_engine[np.maximum(raw, 0)], -1)
    neighbours = np.full((engine.n_items, raw.shape[1]), -1, dtype=np.int64)
    rows = to_engine >= 0
    neighbours[to_engine[rows]] = mapped[rows]
    return popular, neighbours


def load_blend(engine: GRU4RecEngine) -> np.ndarray | None:
    """(n_items, k) float32 normalised item-kNN similarities of the bundle at ``engine.path``, row i weighting the
    neighbours ``load_fallbacks`` gives item i (backend/blend.py); None without ``itemknn/``."""
    knn_dir = Path(engine.path) / "itemknn"
    if not (knn_dir / "manifest.json").exists():
        return None
    art = load_artifact(knn_dir, expect_format="upnext-itemknn")
    raw = _checked_neighbours(art)
    sims = art.arrays.get("similarities")
    if sims is None or sims.shape != raw.shape or sims.dtype.kind != "f" or not np.isfinite(sims).all() \
            or (sims < 0).any():
        raise ArtifactError(f"{knn_dir}: 'similarities' must be finite numbers >= 0, one per neighbour")
    return aligned_neighbours(art.item_ids, raw, sims, engine.item_ids)[1]


def _item_ids(art) -> list[str]:
    ids = art.manifest.get("item_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ArtifactError(f"{art.path}: 'item_ids' must be a list of strings")
    return ids


def _checked_neighbours(art) -> np.ndarray:
    """The item-kNN artifact's (n_items, k) neighbour indices as int64, after checking that every entry is an
    index into its own item list or -1 (none): a bad one would index out of range while serving."""
    n = len(_item_ids(art))
    raw = art.arrays.get("neighbours")
    if raw is None or raw.ndim != 2 or raw.dtype.kind not in "iu" or raw.shape[0] != n:
        shape = None if raw is None else (raw.shape, str(raw.dtype))
        raise ArtifactError(f"{art.path}: 'neighbours' must be ({n}, k) integers, got {shape}")
    if raw.size and (int(raw.min()) < -1 or int(raw.max()) >= n):
        raise ArtifactError(f"{art.path}: 'neighbours' holds indices outside [-1, {n}) "
                            f"(min {int(raw.min())}, max {int(raw.max())})")
    return np.asarray(raw, dtype=np.int64)


def check_servable(path: str | Path) -> GRU4RecEngine:
    """What serving will do with the bundle at ``path``: load it, answer a trial request, load its fallbacks.
    Returns the engine; raises UpnextError saying why the bundle cannot be served (never another exception)."""
    path = Path(path)
    if not path.is_dir():
        raise UpnextError(f"{path}: no such directory")
    try:
        eng = GRU4RecEngine.load(path, mmap=False)
        eng.top_k(eng.state_from_history([0]), 1)
        load_fallbacks(eng)
        load_blend(eng)
    except ArtifactError as exc:
        raise UpnextError(f"the bundle cannot be served: {exc}") from None
    except Exception as exc:  # whatever a hostile bundle triggers is a refusal with its reason, not a traceback
        raise UpnextError(f"the bundle cannot be served: {type(exc).__name__}: {exc}") from None
    return eng


def bundle_files(path: str | Path) -> list[str]:
    """Every file serving reads from the bundle at ``path`` (its manifests and arrays, those of the fallbacks
    beside it included), as names relative to ``path``. Raises ArtifactError for a manifest that cannot be read
    or names a file outside its folder."""
    path = Path(path)
    files = array_files(read_manifest(path))
    for sub in FALLBACKS:
        if (path / sub / MANIFEST).exists():
            files += [f"{sub}/{name}" for name in array_files(read_manifest(path / sub))]
    return files


def file_sha256(file: Path) -> str:
    with open(file, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sums_text(hashes: dict[str, str]) -> bytes:
    """``SHA256SUMS`` of files (relative name -> hex SHA-256), in ``sha256sum`` format, sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(hashes.items())).encode()


def verify_bundle(path: str | Path) -> bool:
    """Check a published bundle before it is mapped: True once verified. A content-addressed folder (its name a
    SHA-256) must hold ``SHA256SUMS`` whose hash is that name, exactly the files it lists, each with its listed
    hash; anything else raises ArtifactError saying what differs. False: the folder is not content-addressed (a
    model registered before publishing copied and hashed bundles), so there is nothing to verify against."""
    path = Path(path)
    if not DIGEST.fullmatch(path.name):
        return False
    try:
        text = (path / SUMS).read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: published bundle without a readable {SUMS} ({exc.strerror})") from None
    if hashlib.sha256(text).hexdigest() != path.name:
        raise ArtifactError(f"{path}/{SUMS} was changed after publishing (its SHA-256 is not the folder's name)")
    listed = {}
    for line in text.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    present = set()
    for root, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.relpath(os.path.join(root, name), path).replace(os.sep, "/")
            if rel != SUMS:
                present.add(rel)
    if present != set(listed):
        raise ArtifactError(f"{path}: files differ from those recorded at publishing (missing: "
                            f"{sorted(set(listed) - present)}, added: {sorted(present - set(listed))})")
    for name, digest in sorted(listed.items()):
        file = path / name
        if file.is_symlink():
            raise ArtifactError(f"{file}: a link in a published bundle")
        actual = file_sha256(file)
        if actual != digest:
            raise ArtifactError(f"{file}: SHA-256 {actual[:12]}..., recorded at publishing {digest[:12]}...: "
                                "the file was changed after publishing")
    return True


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
