"""The GRU4Rec + item-kNN blend (backend/blend.py): its weight, its neighbours in the model's item space, and the
offline evaluation scoring what serving serves."""
import numpy as np
import pytest

from backend.blend import DEFAULT_WEIGHT, aligned_neighbours, blend_rank_pairs, blend_weight, check_weight
from backend.gru4rec.weights import load_model
from backend.serving.engine import GRU4RecEngine
from backend.session_data import SessionData
from tests.kernels.random_model import save_random_gru4rec


@pytest.mark.parametrize("manifest, w", [({"blend": {"weight": 0.8}}, 0.8), ({"blend": {"weight": 0}}, 0.0),
                                         ({}, DEFAULT_WEIGHT), ({"blend": {"weight": -1}}, DEFAULT_WEIGHT),
                                         ({"blend": {"weight": "lots"}}, DEFAULT_WEIGHT),
                                         ({"blend": {"weight": True}}, DEFAULT_WEIGHT),
                                         ({"blend": {"weight": float("inf")}}, DEFAULT_WEIGHT),
                                         ({"blend": [1]}, DEFAULT_WEIGHT)])
def test_the_weight_comes_from_the_manifest_else_the_measured_default(manifest, w):
    assert blend_weight(manifest) == w


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_a_bad_weight_is_refused(bad):
    with pytest.raises(ValueError, match="blend weight"):
        check_weight(bad)


def test_neighbours_move_into_the_models_item_space_with_normalised_weights():
    knn_ids = ["c", "a", "b", "gone"]                     # the kNN's own order; "gone" is not in the model
    neighbours = np.array([[1, 2], [0, 3], [-1, -1], [0, 1]], np.int32)
    sims = np.array([[3.0, 1.0], [2.0, 2.0], [0.0, 0.0], [1.0, 1.0]], np.float32)
    nb, nw = aligned_neighbours(knn_ids, neighbours, sims, ["a", "b", "c", "new"])
    assert nb.tolist() == [[2, -1], [-1, -1], [0, 1], [-1, -1]]          # a -> c (gone dropped); c -> a, b
    np.testing.assert_allclose(nw, [[1.0, 0.0], [0.0, 0.0], [0.75, 0.25], [0.0, 0.0]])


def test_the_offline_ranks_are_the_serving_kernels_order(tmp_path):
    """What ``upnext evaluate`` counts for the blend is where the served list (engine.blend_top_k) puts the
    target: the same formula, on the same scores."""
    n = 50
    path = save_random_gru4rec(tmp_path / "m", n, [16], seed=4)
    weights, art = load_model(path)
    eng = GRU4RecEngine.load(path)
    rng = np.random.default_rng(0)
    raw = np.stack([rng.choice(n, 6, replace=False) for _ in range(n)]).astype(np.int64)
    nb, nw = aligned_neighbours(art.item_ids, raw, rng.uniform(0.1, 1, raw.shape).astype(np.float32), art.item_ids)
    sessions = [list(rng.integers(0, n, 6)) for _ in range(5)]
    w = 0.5
    for s in sessions:
        test = SessionData.from_sessions([s], item_ids=np.array(art.item_ids, dtype=object))
        standard, _ = blend_rank_pairs(weights, nb, nw, test, (w,), first_target=2)[w]
        expected = []
        for t in range(1, len(s)):
            state = eng.state_from_history(s[:t])
            order, _ = eng.blend_top_k(state, n, nb[s[t - 1]], nw[s[t - 1]], w)
            expected.append(int(np.flatnonzero(order == s[t])[0]) + 1)
        assert standard.tolist() == expected
