"""Random-weight GRU4Rec artifacts on disk for the serving tests."""
from __future__ import annotations

import pytest

from tests.kernels.random_model import save_random_gru4rec

N_ITEMS = 400
MODELS = {"shared": [16], "separate": [12, 8], "onehot": [8, 12]}


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict:
    """embedding mode -> artifact directory (N_ITEMS items, layers MODELS[mode])."""
    root = tmp_path_factory.mktemp("models")
    return {mode: save_random_gru4rec(root / mode, N_ITEMS, layers, mode, seed=7) for mode, layers in MODELS.items()}
