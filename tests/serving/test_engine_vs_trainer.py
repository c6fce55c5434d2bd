"""Served scores equal the trained model's: a GRU4Rec trained by backend/gru4rec (torch reference step and the
fast step), saved as an artifact, then scored for the same sessions by torch (the trainer's weights as torch
tensors, the trainer's equations) and by the serving engine (Numba kernels on the artifact)."""
import numpy as np
import pytest
import torch

from backend.gru4rec.params import parse_params
from backend.gru4rec.trainer import train
from backend.gru4rec.weights import save_model
from backend.serving.engine import GRU4RecEngine
from backend.session_data import SessionData


def torch_scores(weights, items: list[int]) -> np.ndarray:
    """(n_items,) scores after the session ``items``, computed with torch from the trained weights."""
    t = {k: torch.from_numpy(np.array(v)) for k, v in weights.arrays().items()}
    h = [torch.zeros(H) for H in weights.sizes]
    inputs = {"shared": "Wy", "separate": "E", "onehot": "layer0.Wx"}[weights.mode]
    for item in items:
        x = t[inputs][item]
        for i, H in enumerate(weights.sizes):
            a = x + t["layer0.b"] if (i == 0 and weights.mode == "onehot") else x @ t[f"layer{i}.Wx"] + t[f"layer{i}.b"]
            g = h[i] @ t[f"layer{i}.Wrz"]
            r, z = torch.sigmoid(a[:H] + g[:H]), torch.sigmoid(a[H:2 * H] + g[H:])
            n = torch.tanh(a[2 * H:] + (r * h[i]) @ t[f"layer{i}.Wh"])
            h[i] = x = z * h[i] + (1 - z) * n
    return (x @ t["Wy"].T + t["By"]).numpy()


@pytest.mark.parametrize("impl, extra", [("reference", "constrained_embedding=True,layers=24"),
                                         ("fast", "constrained_embedding=True,layers=16/24"),
                                         ("fast", "constrained_embedding=False,embedding=12,layers=20"),
                                         ("fast", "constrained_embedding=False,embedding=0,layers=16")])
def test_served_scores_equal_the_trained_models(tmp_path, impl, extra):
    rng = np.random.default_rng(0)
    sessions = [list(rng.integers(0, 120, rng.integers(2, 9))) for _ in range(300)]
    data = SessionData.from_sessions(sessions)
    params = parse_params(f"loss=cross-entropy,batch_size=16,n_sample=32,n_epochs=1,{extra}")
    weights = train(data, params, impl=impl).weights
    save_model(tmp_path / "m", weights, params=params.as_dict(), item_ids=data.item_ids, support=data.support(),
               data={})
    engine = GRU4RecEngine.load(tmp_path / "m")
    for session in sessions[:20]:
        expected = torch_scores(weights, session)
        items, scores = engine.top_k(engine.state_from_history(session), engine.n_items)
        served = np.empty(engine.n_items, np.float32)
        served[items] = scores
        np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-4)
        assert list(items[:10]) == list(np.argsort(-expected, kind="stable")[:10])
