"""GRU4Rec weights in the artifact layout of backend/artifact.py, their init, a numpy forward, and artifact io.

The parametrisation is exactly the artifact docstring's (gate blocks [r | z | n]):

    a = x @ Wx + b ;  g = h @ Wrz
    r = sigmoid(a[:, :H] + g[:, :H]) ;  z = sigmoid(a[:, H:2H] + g[:, H:])
    n = tanh(a[:, 2H:] + (r * h) @ Wh)
    h' = z * h + (1 - z) * n

so that serving kernels written against that docstring reproduce the trainer's scores. No torch here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.artifact import Artifact, ArtifactError, load_artifact, save_artifact
from backend.item_features import ItemFeatures, ItemFeaturesError

FORMAT = "upnext-gru4rec"
MODES = ("shared", "separate", "onehot")


@dataclass
class LayerWeights:
    Wx: np.ndarray    # (in_l, 3*H) float32, column blocks [r | z | n]; onehot layer 0: (n_items, 3*H)
    Wrz: np.ndarray   # (H, 2*H) float32
    Wh: np.ndarray    # (H, H) float32
    b: np.ndarray     # (3*H,) float32

    @property
    def size(self) -> int:
        return self.Wh.shape[0]


@dataclass
class GRU4RecWeights:
    mode: str                      # "shared" | "separate" | "onehot"
    Wy: np.ndarray                 # (n_items, H_last) float32 output item vectors (shared mode: also the inputs)
    By: np.ndarray                 # (n_items,) float32
    layers: list[LayerWeights]
    E: np.ndarray | None = None    # (n_items, embedding) float32, separate mode only
    extra: dict = field(default_factory=dict)
    # item features (params.item_features; shared mode): item i's vector = id_scale * Wy[i] + features row i @ Fy
    Fy: np.ndarray | None = None   # (n_features, H_last) float32
    features: ItemFeatures | None = None   # CSR rows aligned with the item indices
    id_scale: float = 1.0          # the ID row's multiplier in the item vectors (params id_dropout_scaling=serve)

    @property
    def n_items(self) -> int:
        return self.Wy.shape[0]

    @property
    def sizes(self) -> list[int]:
        return [layer.size for layer in self.layers]

    def arrays(self) -> dict[str, np.ndarray]:
        """Artifact name -> array (the live arrays, not copies)."""
        out = {"Wy": self.Wy, "By": self.By}
        if self.E is not None:
            out["E"] = self.E
        if self.Fy is not None:
            out["Fy"] = self.Fy
        for i, layer in enumerate(self.layers):
            out.update({f"layer{i}.Wx": layer.Wx, f"layer{i}.Wrz": layer.Wrz, f"layer{i}.Wh": layer.Wh,
                        f"layer{i}.b": layer.b})
        return out

    def copy(self) -> "GRU4RecWeights":
        out = GRU4RecWeights.from_arrays(self.mode, {k: np.array(v) for k, v in self.arrays().items()})
        out.features, out.id_scale = self.features, self.id_scale
        return out

    def item_vectors(self) -> np.ndarray:
        """(n_items, H_last) float32: what scores and feeds item i, ``id_scale * Wy[i] + features row i @ Fy``;
        Wy itself without item features."""
        if self.Fy is None or self.extra.get("folded"):
            return self.Wy
        f = self.features
        out = np.array(self.Wy, dtype=np.float32)
        if self.id_scale != 1.0:
            out *= np.float32(self.id_scale)
        rows = np.repeat(np.arange(len(f.indptr) - 1), np.diff(f.indptr))
        np.add.at(out, rows, f.values[:, None] * np.asarray(self.Fy)[f.indices])
        return out

    def folded(self) -> "GRU4RecWeights":
        """Evaluation and serving weights: ``Wy`` = the item vectors (ID + features); ``Fy`` and the features
        kept, so that a new item gets ``features @ Fy``."""
        if self.Fy is None or self.extra.get("folded"):
            return self
        return GRU4RecWeights(mode=self.mode, Wy=self.item_vectors(), By=self.By, layers=self.layers, E=self.E,
                              extra={**self.extra, "Wy_id": self.Wy, "folded": True}, Fy=self.Fy,
                              features=self.features)

    @classmethod
    def from_arrays(cls, mode: str, arrays: dict[str, np.ndarray]) -> "GRU4RecWeights":
        n_layers = sum(1 for k in arrays if k.endswith(".Wh"))
        layers = [LayerWeights(arrays[f"layer{i}.Wx"], arrays[f"layer{i}.Wrz"], arrays[f"layer{i}.Wh"],
                               arrays[f"layer{i}.b"]) for i in range(n_layers)]
        return cls(mode=mode, Wy=arrays["Wy"], By=arrays["By"], layers=layers, E=arrays.get("E"),
                   Fy=arrays.get("Fy"))


def glorot_blocks(rng: np.random.Generator, rows: int, block: int, n_blocks: int) -> np.ndarray:
    """(rows, n_blocks*block) float32; each column block uniform(+-sqrt(6 / (rows + block)))."""
    bound = np.sqrt(6.0 / (rows + block))
    return np.concatenate([rng.uniform(-bound, bound, (rows, block)) for _ in range(n_blocks)],
                          axis=1).astype(np.float32)


def init_weights(n_items: int, layers: tuple[int, ...] | list[int], mode: str, embedding: int,
                 rng: np.random.Generator, features: ItemFeatures | None = None) -> GRU4RecWeights:
    """Glorot-uniform per gate block, all biases (b, By) zero (spec §2). With ``features`` (drawn last, so
    the other arrays are drawn as without): Fy Glorot-uniform and the ID part Wy zero, so that an item without
    training events is exactly its features (and id_dropout=1 learns no ID part at all)."""
    if mode not in MODES:
        raise ValueError(f"embedding mode must be one of {MODES}")
    h_last = layers[-1]
    Wy = glorot_blocks(rng, n_items, h_last, 1)
    E = glorot_blocks(rng, n_items, embedding, 1) if mode == "separate" else None
    built = []
    in_size = {"shared": h_last, "separate": embedding, "onehot": n_items}[mode]
    for h in layers:
        built.append(LayerWeights(Wx=glorot_blocks(rng, in_size, h, 3), Wrz=glorot_blocks(rng, h, h, 2),
                                  Wh=glorot_blocks(rng, h, h, 1), b=np.zeros(3 * h, np.float32)))
        in_size = h
    weights = GRU4RecWeights(mode=mode, Wy=Wy, By=np.zeros(n_items, np.float32), layers=built, E=E)
    if features is not None:
        if mode != "shared" or len(features.indptr) != n_items + 1:
            raise ValueError("item features need the shared embedding and one feature row per item")
        weights.Fy = glorot_blocks(rng, max(features.n_features, 1), h_last, 1)
        weights.Wy[...] = 0.0
        weights.features = features
    return weights


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gru_step(weights: GRU4RecWeights, items: np.ndarray, states: list[np.ndarray]) -> list[np.ndarray]:
    """One step without dropout: ``items`` (M,) int, ``states[l]`` (M, H_l) float32 -> new states; the last
    one is the output that scores items (``out @ Wy.T + By``)."""
    new = []
    x = None
    for i, (layer, h) in enumerate(zip(weights.layers, states)):
        H = layer.size
        if i > 0:
            a = x @ layer.Wx + layer.b
        elif weights.mode == "onehot":
            a = layer.Wx[items] + layer.b
        else:
            a = (weights.Wy if weights.mode == "shared" else weights.E)[items] @ layer.Wx + layer.b
        g = h @ layer.Wrz
        r = sigmoid(a[:, :H] + g[:, :H])
        z = sigmoid(a[:, H:2 * H] + g[:, H:])
        n = np.tanh(a[:, 2 * H:] + (r * h) @ layer.Wh)
        x = (z * h + (1.0 - z) * n).astype(np.float32, copy=False)
        new.append(x)
    return new


def save_model(path: str | Path, weights: GRU4RecWeights, *, params: dict[str, Any], item_ids,
               support: np.ndarray, data: dict[str, Any], metrics: dict[str, Any] | None = None,
               training: dict[str, Any] | None = None, blend: dict[str, Any] | None = None) -> Path:
    """``blend``: the GRU4Rec + item-kNN blend's settings (backend/blend.py), kept under "blend" when given."""
    manifest = {"format": FORMAT, "params": params, "layers": weights.sizes, "embedding": weights.mode,
                "item_ids": [str(i) for i in item_ids], "support": [int(s) for s in support],
                "metrics": metrics or {}, "data": data, "training": training or {}}
    if blend:
        manifest["blend"] = blend
    arrays = weights.arrays()
    if weights.Fy is not None:          # Wy: the item vectors; Wy_id their ID part; a new item: features @ Fy
        folded = weights.folded()
        arrays = {**folded.arrays(), "Wy_id": folded.extra["Wy_id"], **weights.features.arrays()}
        manifest["item_features"] = weights.features.manifest()
    return save_artifact(path, manifest, arrays)


def load_model(path: str | Path, *, mmap: bool = True) -> tuple[GRU4RecWeights, Artifact]:
    art = load_artifact(path, mmap=mmap, expect_format=FORMAT)
    mode = art.manifest.get("embedding")
    if mode not in MODES:
        raise ArtifactError(f"{path}: unknown embedding mode {mode!r}")
    weights = GRU4RecWeights.from_arrays(mode, art.arrays)
    if weights.Fy is not None:
        try:
            weights.features = ItemFeatures.from_artifact(art.manifest, art.arrays, art.item_ids)
        except ItemFeaturesError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        if weights.Fy.shape != (max(weights.features.n_features, 1), weights.Wy.shape[1]):
            raise ArtifactError(f"{path}: Fy does not match the feature vocabulary")
        weights.extra["folded"] = True
    if weights.n_items != len(art.item_ids) or weights.sizes != art.manifest.get("layers"):
        raise ArtifactError(f"{path}: arrays do not match the manifest's item_ids/layers")
    return weights, art
