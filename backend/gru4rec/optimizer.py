"""State of Adagrad with momentum (spec §5): one accumulator (and one velocity) per weight element.

The update itself is ``adagrad_momentum_rows`` / ``adagrad_momentum_dense`` in backend.kernels.training_*: item
matrices are updated at the rows a step used only, dense GRU weights everywhere. The accumulator starts at 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.gru4rec.weights import GRU4RecWeights

# item matrices: rows are items, updated sparsely
ITEM_MATRICES = ("Wy", "By", "E", "Fy")     # Fy: feature rows (item features), updated at the used features


@dataclass
class OptimizerState:
    acc: dict[str, np.ndarray]   # same names and shapes as GRU4RecWeights.arrays(), float32
    vel: dict[str, np.ndarray]   # same, or (0, ...) empty arrays when momentum == 0 (plain Adagrad)

    @classmethod
    def zeros_for(cls, weights: GRU4RecWeights, momentum: float) -> "OptimizerState":
        arrays = weights.arrays()
        acc = {k: np.zeros_like(v, dtype=np.float32) for k, v in arrays.items()}
        if momentum > 0:
            vel = {k: np.zeros_like(v, dtype=np.float32) for k, v in arrays.items()}
        else:
            vel = {k: np.zeros((0,) + v.shape[1:], dtype=np.float32) for k, v in arrays.items()}
        return cls(acc, vel)

    def copy(self) -> "OptimizerState":
        return OptimizerState({k: v.copy() for k, v in self.acc.items()},
                              {k: v.copy() for k, v in self.vel.items()})


def is_sparse(name: str, mode: str) -> bool:
    """Whether the weight ``name`` is an item matrix (row-wise updates): Wy, By, E, and layer 0's Wx in
    onehot mode (row i of it IS the input of item i)."""
    return name in ITEM_MATRICES or (mode == "onehot" and name == "layer0.Wx")
