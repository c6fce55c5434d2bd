"""Random GRU4Rec weights in the artifact layout of backend/artifact.py, for kernel, serving and bench tests.

Scales keep hidden states in the GRU's working range (gates neither saturated nor flat) and item scores spread,
so that top-k comparisons between implementations are not decided by near-ties.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.artifact import save_artifact


def random_gru4rec(n_items: int, layers: list[int], embedding: str = "shared", embedding_dim: int = 16,
                   seed: int = 0) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays) of a random model; ``embedding``: "shared", "separate" or "onehot"."""
    rng = np.random.default_rng(seed)

    def uniform(*shape: int, scale: float) -> np.ndarray:
        return rng.uniform(-scale, scale, size=shape).astype(np.float32)

    H_last = layers[-1]
    arrays = {"Wy": uniform(n_items, H_last, scale=1.0), "By": uniform(n_items, scale=0.5)}
    in_0 = {"shared": H_last, "separate": embedding_dim, "onehot": n_items}[embedding]
    if embedding == "separate":
        arrays["E"] = uniform(n_items, embedding_dim, scale=1.0)
    for l, H in enumerate(layers):
        n_in = in_0 if l == 0 else layers[l - 1]
        fan = np.sqrt(6.0 / (min(n_in, 512) + H))
        arrays[f"layer{l}.Wx"] = uniform(n_in, 3 * H, scale=1.5 if embedding == "onehot" and l == 0 else fan)
        arrays[f"layer{l}.Wrz"] = uniform(H, 2 * H, scale=np.sqrt(6.0 / (3 * H)))
        arrays[f"layer{l}.Wh"] = uniform(H, H, scale=np.sqrt(6.0 / (2 * H)))
        arrays[f"layer{l}.b"] = uniform(3 * H, scale=0.1)
    manifest = {"format": "upnext-gru4rec", "params": {"layers": layers, "seed": seed}, "layers": list(layers),
                "embedding": embedding, "item_ids": [f"item-{i}" for i in range(n_items)],
                "support": [1] * n_items, "metrics": {}, "data": {}}
    return manifest, arrays


def save_random_gru4rec(path: str | Path, n_items: int, layers: list[int], embedding: str = "shared",
                        seed: int = 0, **kw) -> Path:
    manifest, arrays = random_gru4rec(n_items, layers, embedding, seed=seed, **kw)
    return save_artifact(path, manifest, arrays)


def weights(arrays: dict[str, np.ndarray], layers: list[int], embedding: str) -> tuple:
    """(inputs, onehot, Wx, Wrz, Wh, b) as the kernels take them (see backend/kernels/serving_reference.py)."""
    L = len(layers)
    onehot = embedding == "onehot"
    inputs = {"shared": "Wy", "separate": "E", "onehot": "layer0.Wx"}[embedding]
    Wx = tuple(np.empty((0, 3 * layers[0]), np.float32) if onehot and l == 0 else arrays[f"layer{l}.Wx"]
               for l in range(L))
    return (arrays[inputs], onehot, Wx, tuple(arrays[f"layer{l}.Wrz"] for l in range(L)),
            tuple(arrays[f"layer{l}.Wh"] for l in range(L)), tuple(arrays[f"layer{l}.b"] for l in range(L)))
