"""The serving engine: one loaded GRU4Rec artifact answering with the Numba CPU kernels. Never imports torch.

Units and shapes used throughout:
- an item is an int64 index in [0, n_items); ``item_ids[i]`` is its external id (str), ``index(id)`` the reverse;
- a session state is a (S,) float32 vector, S = sum(layers) (every layer's hidden state, layer after layer);
  a zero vector is the state of a session that has seen nothing. The engine never modifies a state it is given;
- ``exclude``: item indices never returned (any iterable of ints, may repeat); ``available``: None (all items) or
  an (n_items,) bool/uint8 array, False/0 = never returned (e.g. out of stock);
- scores are raw model scores (higher is better), float32.

An engine is immutable after ``load`` and safe to share between threads: kernels release the GIL, so requests
run in parallel in a thread pool. Call ``prewarm()`` before serving so that no visitor waits for compilation.
"""
from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from backend.artifact import Artifact, ArtifactError, load_artifact
from backend.item_features import ItemFeatures, ItemFeaturesError
from backend.kernels import serving_cpu as kernels

log = logging.getLogger(__name__)

FORMAT = "upnext-gru4rec"
EMBEDDINGS = ("shared", "separate", "onehot")
ITEM_MATRIX_DTYPES = ("float32", "float16")
FLOAT16_MAX = 65504.0
# Largest |weight| served. Trained GRU4Rec weights stay within a few units; with every weight within this bound no
# state (|h| <= 1) or score (<= H * MAX_WEIGHT) comes near float32 overflow, whatever row a request touches.
MAX_WEIGHT = 1e4
_CHUNK_VALUES = 1 << 22   # values checked per vectorised pass (bounds the temporary memory of the check)
_NO_ITEMS = np.zeros(0, dtype=np.int64)
_ALL_AVAILABLE = np.zeros(0, dtype=np.uint8)


def check_gru4rec(artifact: Artifact) -> None:
    """Refuse an artifact the kernels cannot serve: raises ArtifactError saying what is wrong.
    (``load_artifact`` already checked the format version, the files against the manifest and NaNs.)"""
    m, where = artifact.manifest, artifact.path
    if m.get("format") != FORMAT:
        raise ArtifactError(f"{where}: a {m.get('format')!r} artifact, expected {FORMAT!r}")
    layers = m.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(h, int) and h > 0 for h in layers):
        raise ArtifactError(f"{where}: 'layers' must be a non-empty list of positive integers, got {layers!r}")
    embedding = m.get("embedding")
    if embedding not in EMBEDDINGS:
        raise ArtifactError(f"{where}: 'embedding' must be one of {EMBEDDINGS}, got {embedding!r}")
    ids = m.get("item_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ArtifactError(f"{where}: 'item_ids' must be a non-empty list of strings")
    if len(set(ids)) != len(ids):
        raise ArtifactError(f"{where}: 'item_ids' has duplicates")
    n, H_last = len(ids), layers[-1]
    expected = {"Wy": (n, H_last), "By": (n,)}
    in_0 = {"shared": H_last, "onehot": n, "separate": None}[embedding]
    if embedding == "separate":
        if "E" not in artifact.arrays or artifact["E"].ndim != 2:
            raise ArtifactError(f"{where}: 'separate' embedding needs a 2-d array E")
        in_0 = artifact["E"].shape[1]
        expected["E"] = (n, in_0)
    for l, H in enumerate(layers):
        expected[f"layer{l}.Wx"] = (in_0 if l == 0 else layers[l - 1], 3 * H)
        expected[f"layer{l}.Wrz"] = (H, 2 * H)
        expected[f"layer{l}.Wh"] = (H, H)
        expected[f"layer{l}.b"] = (3 * H,)
    for name, shape in expected.items():
        arr = artifact.arrays.get(name)
        if arr is None:
            raise ArtifactError(f"{where}: array {name!r} is missing")
        if arr.shape != shape or arr.dtype != np.float32:
            raise ArtifactError(f"{where}: array {name!r} is {arr.shape} {arr.dtype}, expected {shape} float32")
        row = _first_row_beyond(arr, MAX_WEIGHT)
        if row is not None:
            raise ArtifactError(f"{where}: array {name!r} row {row} holds a weight beyond +-{MAX_WEIGHT:g} (or not "
                                "finite): not a trained model")


def _first_row_beyond(arr: np.ndarray, limit: float) -> int | None:
    """The first row (index along axis 0) of ``arr`` with a value outside [-limit, limit] or not finite; None if
    there is none. Every row is checked, a block of rows per vectorised pass."""
    if arr.ndim == 0 or arr.size == 0:
        return None
    per_row = max(1, arr.size // len(arr))
    step = max(1, _CHUNK_VALUES // per_row)
    for start in range(0, len(arr), step):
        block = np.asarray(arr[start:start + step]).reshape(-1, per_row)
        ok = (np.abs(block) <= limit).all(axis=1)
        if not ok.all():
            return start + int(np.argmin(ok))
    return None


class GRU4RecEngine:
    """Answers for one GRU4Rec artifact: advance states, rebuild them from histories, top-k and rollouts."""

    def __init__(self, artifact: Artifact, *, item_matrix: str = "float32") -> None:
        check_gru4rec(artifact)
        if item_matrix not in ITEM_MATRIX_DTYPES:
            raise ValueError(f"item_matrix must be one of {ITEM_MATRIX_DTYPES}, got {item_matrix!r}")
        m = artifact.manifest
        self.path: Path = artifact.path
        self.manifest = m
        self.version = hashlib.sha256(repr(sorted(m.items())).encode()).hexdigest()[:12]
        self.layers: tuple[int, ...] = tuple(m["layers"])
        self.embedding: str = m["embedding"]
        self.item_ids: list[str] = list(m["item_ids"])
        self._index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        L = len(self.layers)
        self.onehot = self.embedding == "onehot"
        # Item matrices stay as loaded (read-only memory maps shared by worker processes); the small dense GRU
        # weights are copied into private memory. Wx[0] is unused in one-hot mode (its rows are the inputs).
        self._inputs = artifact[{"shared": "Wy", "separate": "E", "onehot": "layer0.Wx"}[self.embedding]]
        self._Wx = tuple(np.zeros((0, 3 * self.layers[0]), np.float32) if self.onehot and l == 0
                         else np.array(artifact[f"layer{l}.Wx"]) for l in range(L))
        self._Wrz = tuple(np.array(artifact[f"layer{l}.Wrz"]) for l in range(L))
        self._Wh = tuple(np.array(artifact[f"layer{l}.Wh"]) for l in range(L))
        self._b = tuple(np.array(artifact[f"layer{l}.b"]) for l in range(L))
        self._bias = artifact["By"]
        Wy = artifact["Wy"]
        self.item_matrix = item_matrix
        if item_matrix == "float16" and np.abs(Wy).max() > FLOAT16_MAX:
            log.warning("item matrix exceeds the float16 range; scoring in float32", extra={"model": str(self.path)})
            self.item_matrix = "float32"
        # (n_items, H_last) float32, or uint16 holding float16 bits: half the bytes read per request
        self._scoring = Wy.astype(np.float16).view(np.uint16) if self.item_matrix == "float16" else Wy
        # the item vectors of diversity (rows of Wy, as loaded) and their lengths
        self._vectors = Wy
        self._norms = np.concatenate([np.sqrt(np.square(Wy[i:i + 16384], dtype=np.float64).sum(axis=1))
                                      for i in range(0, len(Wy), 16384)])
        # item features (a model trained with item_features=True): a new item's vector is its features @ Fy
        self.features: ItemFeatures | None = None
        self.trained_items = len(self.item_ids)
        if "Fy" in artifact.arrays and self.embedding == "shared":
            try:
                self.features = ItemFeatures.from_artifact(m, artifact.arrays, self.item_ids)
            except ItemFeaturesError as exc:
                raise ArtifactError(f"{self.path}: {exc}") from None
            self._Fy = np.asarray(artifact["Fy"], np.float32)
            if self._Fy.shape != (max(self.features.n_features, 1), self.layers[-1]):
                raise ArtifactError(f"{self.path}: Fy does not match the feature vocabulary")

    def with_new_items(self, records: list[dict]) -> "GRU4RecEngine":
        """This engine plus the catalogue ``records`` it does not know, each with the vector of its features
        (features @ Fy, no ID part, bias 0: what training gives an item without events), appended after the
        trained items (whose indices, states and vectors stay). Itself when the model has no item features."""
        if self.features is None:
            return self
        trained = self.trained_items
        records = [r for r in records if self._index.get(str(r["id"]), trained) >= trained]
        new = copy.copy(self)
        new.item_ids = self.item_ids[:self.trained_items] + [str(r["id"]) for r in records]
        new._index = {item_id: i for i, item_id in enumerate(new.item_ids)}
        base_inputs = self._inputs[:self.trained_items]
        if not records:
            vectors = np.zeros((0, self.layers[-1]), np.float32)
        else:
            X = self.features.encode(records)
            vectors = np.zeros((len(records), self.layers[-1]), np.float32)
            rows = np.repeat(np.arange(len(records)), np.diff(X.indptr))
            np.add.at(vectors, rows, X.values[:, None] * self._Fy[X.indices])
            vectors = np.clip(vectors, -MAX_WEIGHT, MAX_WEIGHT)
        new._inputs = np.concatenate([base_inputs, vectors])
        new._vectors = np.concatenate([self._vectors[:trained], vectors])      # diversity's item vectors
        new._norms = np.concatenate([self._norms[:trained],
                                     np.sqrt(np.square(vectors, dtype=np.float64).sum(axis=1))])
        new._bias = np.concatenate([self._bias[:self.trained_items], np.zeros(len(records), np.float32)])
        new._scoring = (np.concatenate([self._scoring[:self.trained_items],
                                        vectors.astype(np.float16).view(np.uint16)])
                        if self.item_matrix == "float16" else new._inputs)
        return new

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True, item_matrix: str = "float32") -> "GRU4RecEngine":
        """Load and check an artifact directory; raises ArtifactError (with the reason) if it cannot be served."""
        return cls(load_artifact(path, mmap=mmap, expect_format=FORMAT), item_matrix=item_matrix)

    # ------------------------------------------------------------ items and states

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def state_size(self) -> int:
        """S: float32 values in one session state."""
        return sum(self.layers)

    def index(self, item_id: str) -> int | None:
        """Item index of an external id, None if the model does not know it."""
        return self._index.get(item_id)

    def indices(self, item_ids: Iterable[str]) -> np.ndarray:
        """(m,) int64 indices of the known ids, in order; unknown ids are skipped."""
        found = [i for i in map(self._index.get, item_ids) if i is not None]
        return np.array(found, dtype=np.int64)

    def availability(self, available_ids: Iterable[str]) -> np.ndarray:
        """(n_items,) uint8 mask: 1 for the model's items among ``available_ids``."""
        mask = np.zeros(self.n_items, dtype=np.uint8)
        mask[self.indices(available_ids)] = 1
        return mask

    def zero_state(self) -> np.ndarray:
        return np.zeros(self.state_size, dtype=np.float32)

    def advance(self, state: np.ndarray, item: int) -> np.ndarray:
        """New (S,) state after the session saw ``item``; ``state`` itself is left unchanged."""
        new = self._state(state).copy()
        kernels.gru_step(new, self._item(item), self._inputs, self.onehot, self._Wx, self._Wrz, self._Wh, self._b)
        return new

    def advance_many(self, states: np.ndarray, items: Sequence[int]) -> np.ndarray:
        """(B, S) new states: row b advanced by items[b]."""
        new = np.array(states, dtype=np.float32, order="C", copy=True)
        items = self._items(items)
        if new.ndim != 2 or new.shape[1] != self.state_size or len(new) != len(items):
            raise ValueError(f"states must be (B, {self.state_size}) with one item per row")
        kernels.gru_step_batch(new, items, self._inputs, self.onehot, self._Wx, self._Wrz, self._Wh, self._b)
        return new

    def state_from_history(self, items: Sequence[int]) -> np.ndarray:
        """(S,) state of a session that saw ``items`` (indices, oldest first) from a zero state."""
        state = self.zero_state()
        for item in self._items(items):
            kernels.gru_step(state, item, self._inputs, self.onehot, self._Wx, self._Wrz, self._Wh, self._b)
        return state

    # ------------------------------------------------------------ answers

    def top_k(self, state: np.ndarray, k: int, exclude: Iterable[int] = (),
              available: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best k allowed items for one session: (items (k',) int64, scores (k',) float32), best first,
        k' = min(k, allowed items)."""
        h = np.ascontiguousarray(self._state(state)[self.state_size - self.layers[-1]:])
        return kernels.score_topk(h, self._scoring, self._bias, self._k(k), self._items(exclude),
                                  self._mask(available))

    def top_k_many(self, states: np.ndarray, k: int, excludes: Sequence[Iterable[int]] | None = None,
                   available: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best k items of B sessions in one pass over the item matrix (more throughput for large catalogues).

        states: (B, S); excludes: one iterable of item indices per session (or None). Returns (items (B, k) int64,
        scores (B, k) float32); a row with fewer allowed items is padded with item -1 and score -inf."""
        states = np.asarray(states, dtype=np.float32)
        if states.ndim != 2 or states.shape[1] != self.state_size:
            raise ValueError(f"states must be (B, {self.state_size}), got {states.shape}")
        excludes = [self._items(e) for e in excludes] if excludes is not None else [_NO_ITEMS] * len(states)
        if len(excludes) != len(states):
            raise ValueError("excludes must have one entry per state")
        hs = np.ascontiguousarray(states[:, self.state_size - self.layers[-1]:])
        return kernels.score_topk_batch(hs, self._scoring, self._bias, self._k(k), *_flat(excludes, np.int64),
                                        self._mask(available))

    def blend_top_k(self, state: np.ndarray, k: int, neighbours: np.ndarray, nweights: np.ndarray, w: float,
                    exclude: Iterable[int] = (), available: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best k allowed items of the GRU4Rec + item-kNN blend (backend/blend.py): softmax of this state's scores
        plus ``w`` times ``nweights`` on the context item's ``neighbours`` ((m,) item indices, -1 none; (m,)
        normalised similarities). Returns (items (k',) int64, blend scores (k',) float32), best first."""
        h = np.ascontiguousarray(self._state(state)[self.state_size - self.layers[-1]:])
        nb, nw = self.check_context(neighbours, nweights)
        return kernels.blend_topk(h, self._scoring, self._bias, self._k(k), self._items(exclude),
                                  self._mask(available), nb, nw, float(w))

    def blend_top_k_many(self, states: np.ndarray, k: int, neighbours: Sequence[np.ndarray],
                         nweights: Sequence[np.ndarray], ws: Sequence[float],
                         excludes: Sequence[Iterable[int]] | None = None,
                         available: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``blend_top_k`` of B sessions in one pass over the item matrix, each with its own context neighbours and
        weight; rows padded like ``top_k_many``. Holds a (B, n_items) float32 score matrix: keep B * n_items
        moderate (the batcher does)."""
        states = np.asarray(states, dtype=np.float32)
        if states.ndim != 2 or states.shape[1] != self.state_size:
            raise ValueError(f"states must be (B, {self.state_size}), got {states.shape}")
        B = len(states)
        excludes = [self._items(e) for e in excludes] if excludes is not None else [_NO_ITEMS] * B
        contexts = [self.check_context(nb, nw) for nb, nw in zip(neighbours, nweights)]
        if not len(excludes) == len(contexts) == len(ws) == B:
            raise ValueError("excludes, neighbours, nweights and ws must have one entry per state")
        hs = np.ascontiguousarray(states[:, self.state_size - self.layers[-1]:])
        nb, context_offsets = _flat([c[0] for c in contexts], np.int64)
        nw, _ = _flat([c[1] for c in contexts], np.float32)
        return kernels.blend_topk_batch(hs, self._scoring, self._bias, self._k(k), *_flat(excludes, np.int64),
                                        self._mask(available), nb, nw, context_offsets,
                                        np.asarray(ws, dtype=np.float64))

    def check_context(self, neighbours, nweights) -> tuple[np.ndarray, np.ndarray]:
        """A blend's context neighbours ((m,) item indices, -1 none) and their (m,) weights, as the kernels take
        them; ValueError for bad ones."""
        nb = _writable(neighbours, np.int64)
        nw = _writable(nweights, np.float32)
        if nb.ndim != 1 or nw.shape != nb.shape or (len(nb) and nb.max() >= self.n_items):
            raise ValueError("neighbours and nweights: one weight per neighbour index (-1 = none)")
        return nb, nw

    def rollout(self, state: np.ndarray, n: int, exclude: Iterable[int] = (),
                available: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """An "up next" sequence of up to n distinct items: each pick is fed back as if the visitor saw it.
        Returns (items (n',) int64, scores (n',) float32) in play order."""
        return kernels.rollout(self._state(state), self._k(n), self._inputs, self.onehot, self._Wx, self._Wrz,
                               self._Wh, self._b, self._scoring, self._bias, self._items(exclude),
                               self._mask(available))

    def rerank(self, candidates: np.ndarray, relevance: np.ndarray, categories: np.ndarray, diversity: float,
               k: int, max_per_category: int | None = None) -> np.ndarray:
        """Up to k of ``candidates`` (item indices, best first) re-ranked by maximal marginal relevance over the
        model's item vectors (categories where an item has no vector; see ``kernels.mmr_rerank``), with at most
        ``max_per_category`` items of one category (``categories``: (n_items,) int32 codes, -1 for none).
        ``relevance``: (m,) in [0, 1]. Returns the chosen item indices in their new order."""
        candidates = self._items(candidates)
        relevance = np.ascontiguousarray(relevance, dtype=np.float64)
        cats = _writable(categories, np.int32)
        if len(relevance) != len(candidates) or cats.shape != (self.n_items,):
            raise ValueError("relevance: one per candidate; categories: one code per item")
        if not 0.0 <= float(diversity) <= 1.0:
            raise ValueError(f"diversity must be within [0, 1], got {diversity}")
        order = kernels.mmr_rerank(candidates, relevance, self._vectors, self._norms, cats, float(diversity),
                                   self._k(k), int(max_per_category or 0))
        return candidates[order]

    def prewarm(self) -> None:
        """Compile (or load from the on-disk cache) every kernel specialisation this engine calls, with arrays
        of the same kinds as in serving (read-only memory maps compile separately from writable arrays)."""
        state = self.state_from_history([0])
        two = self.advance_many(np.stack([state, state]), [0, self.n_items - 1])
        mask = np.ones(self.n_items, dtype=np.uint8)
        for exclude, available in (((), None), ((0,), mask)):
            self.top_k(state, 1, exclude, available)
            self.top_k_many(two, 1, [exclude, exclude], available)
            self.rollout(state, 2, exclude, available)
            self.blend_top_k(state, 1, np.array([0, -1]), np.array([1.0, 0.0]), 0.35, exclude, available)
            self.blend_top_k_many(two, 1, [np.array([0, -1])] * 2, [np.array([1.0, 0.0])] * 2, [0.35, 0.5],
                                  [exclude, exclude], available)
        self.rerank(np.array([0, self.n_items - 1]), np.array([1.0, 0.5]), np.full(self.n_items, -1, np.int32),
                    0.5, 2, 1)

    # ------------------------------------------------------------ argument checks (the kernels trust them)

    def check_request(self, state: np.ndarray, k: int, exclude: Iterable[int] = (),
                      available: np.ndarray | None = None) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """The arguments of ``top_k`` as the kernels take them; raises ValueError for bad ones. Lets a caller that
        batches requests refuse a bad one alone instead of failing its whole batch."""
        return self._state(state), self._k(k), self._items(exclude), self._mask(available)

    def _state(self, state: np.ndarray) -> np.ndarray:
        state = _writable(state, np.float32)
        if state.shape != (self.state_size,):
            raise ValueError(f"a state is ({self.state_size},) float32, got shape {state.shape}")
        return state

    def _item(self, item: int) -> int:
        item = int(item)
        if not 0 <= item < self.n_items:
            raise ValueError(f"item index {item} out of range [0, {self.n_items})")
        return item

    def _items(self, items: Iterable[int]) -> np.ndarray:
        arr = _writable(items if isinstance(items, np.ndarray) else list(items), np.int64)
        if arr.ndim != 1:
            raise ValueError("item indices must be a flat sequence")
        if len(arr) and (arr.min() < 0 or arr.max() >= self.n_items):
            raise ValueError(f"item indices must be in [0, {self.n_items})")
        return arr

    def _mask(self, available: np.ndarray | None) -> np.ndarray:
        if available is None:
            return _ALL_AVAILABLE
        mask = np.asarray(available)
        if mask.shape != (self.n_items,) or mask.dtype not in (np.bool_, np.uint8):
            raise ValueError(f"available must be an ({self.n_items},) bool or uint8 array")
        return _writable(mask.view(np.uint8), np.uint8)

    @staticmethod
    def _k(k: int) -> int:
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return int(k)


def _flat(arrays: Sequence[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """(the arrays end to end, (len + 1,) int64 offsets where each starts): the batch kernels' layout."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    flat = np.concatenate(arrays).astype(dtype, copy=False) if len(arrays) else np.zeros(0, dtype)
    return _writable(flat, dtype), offsets


def _writable(values, dtype) -> np.ndarray:
    """A C-contiguous writable array: the kernels are compiled (prewarmed) for these; a read-only or strided
    argument would compile another specialisation on a visitor's request."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    return arr if arr.flags.writeable else arr.copy()
