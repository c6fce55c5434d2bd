"""The GRU4Rec + item-kNN blend (backend/blend.py): its weight, its neighbours in the model's item space, and the
offline evaluation scoring what serving serves."""
import numpy as np
import pytest

from backend.blend import (UNCHOSEN, Blend, aligned_neighbours, blend_of, blend_rank_pairs, check_weight,
                           context_neighbours)
from backend.gru4rec.weights import load_model
from backend.serving.engine import GRU4RecEngine
from backend.session_data import SessionData
from tests.kernels.random_model import save_random_gru4rec


@pytest.mark.parametrize("manifest, blend", [
    ({"blend": {"weight": 0.8}}, Blend(0.8, 1)),                      # chosen before contexts: the last item
    ({"blend": {"weight": 0.8, "context": 3, "decay": 0.25}}, Blend(0.8, 3, 0.25)),
    ({"blend": {"weight": 0}}, Blend(0.0, 1)),
    ({"blend": {"weight": 0.8, "context": 0}}, Blend(0.8, 1)), ({"blend": {"weight": 0.8, "context": 2.5}}, Blend(0.8, 1)),
    ({"blend": {"weight": 0.8, "context": True}}, Blend(0.8, 1)),
    ({"blend": {"weight": 0.8, "context": 2, "decay": 0}}, Blend(0.8, 2)),
    ({"blend": {"weight": 0.8, "context": 2, "decay": 1.5}}, Blend(0.8, 2)),
    ({}, UNCHOSEN), ({"blend": {"weight": -1}}, UNCHOSEN), ({"blend": {"weight": "lots"}}, UNCHOSEN),
    ({"blend": {"weight": True}}, UNCHOSEN), ({"blend": {"weight": float("inf")}}, UNCHOSEN), ({"blend": [1]}, UNCHOSEN)])
def test_the_blend_comes_from_the_manifest_else_gru4rec_alone(manifest, blend):
    assert blend_of(manifest) == blend


def test_the_context_items_share_the_item_to_item_part_newest_first():
    neighbours = np.array([[1, 2], [2, -1], [0, 1]], np.int64)
    nweights = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]], np.float32)
    nb, nw = context_neighbours(np.array([2, 0, 1]), neighbours, nweights, Blend(1.0, 2, 0.5))
    assert nb.tolist() == [0, 1, 1, 2]                                # item 2's neighbours, then item 0's
    np.testing.assert_allclose(nw, [0.25 * 2 / 3, 0.75 * 2 / 3, 0.5 / 3, 0.5 / 3], rtol=1e-6)
    nb, nw = context_neighbours(np.array([1]), neighbours, nweights, Blend(1.0, 3))       # one item: all of it
    assert nb.tolist() == [2, -1] and nw.tolist() == [1.0, 0.0]
    nb, nw = context_neighbours(np.array([], np.int64), neighbours, nweights, Blend(1.0, 3))
    assert nb.tolist() == [-1]


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
    seen = {}
    for blend in (Blend(0.5), Blend(0.5, 3), Blend(2.0, 4, 0.3)):
        for s in sessions:
            test = SessionData.from_sessions([s], item_ids=np.array(art.item_ids, dtype=object))
            standard, _ = blend_rank_pairs(weights, nb, nw, test, (blend,), first_target=2)[blend]
            expected = []
            for t in range(1, len(s)):
                state = eng.state_from_history(s[:t])
                cb, cw = context_neighbours(np.array(s[:t][::-1]), nb, nw, blend)
                order, _ = eng.blend_top_k(state, n, cb, cw, blend.weight)
                expected.append(int(np.flatnonzero(order == s[t])[0]) + 1)
            assert standard.tolist() == expected, blend
            seen.setdefault(blend, []).extend(expected)
    assert seen[Blend(0.5)] != seen[Blend(0.5, 3)]                  # the earlier items do move the targets
