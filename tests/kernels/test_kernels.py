"""The Numba kernels (backend/kernels/serving_cpu.py) give the results of the numpy reference (reference.py)."""
from __future__ import annotations

import numpy as np
import pytest

from backend.kernels import serving_cpu as cpu
from backend.kernels import serving_reference as reference
from tests.kernels.random_model import random_gru4rec, weights

N_ITEMS = 300
MODELS = [("shared", [16]), ("separate", [12, 8]), ("onehot", [8, 12])]


@pytest.fixture(params=MODELS, ids=lambda m: f"{m[0]}-{'x'.join(map(str, m[1]))}", scope="module")
def model(request):
    embedding, layers = request.param
    _, arrays = random_gru4rec(N_ITEMS, layers, embedding, seed=len(layers))
    return arrays, weights(arrays, layers, embedding), sum(layers), layers[-1]


def state_after(gru, S: int, items: list[int], impl=reference) -> np.ndarray:
    state = np.zeros(S, dtype=np.float32)
    for i in items:
        impl.gru_step(state, i, *gru)
    return state


def no_near_ties(scores: np.ndarray, k: int, tol: float = 1e-4) -> None:
    """The test's data must not let float rounding decide the order of the best k + 1 items."""
    best = np.sort(scores)[::-1][:k + 1]
    assert np.all(-np.diff(best) > tol), "random data has near-ties: pick another seed"


@pytest.mark.parametrize("impl", [reference, cpu], ids=["reference", "cpu"])
def test_gru_step_keeps_state_bounded_and_changes_it(model, impl):
    _, gru, S, _ = model
    state = state_after(gru, S, [0, 5, 7], impl)
    assert state.dtype == np.float32 and np.all(np.abs(state) < 1) and np.abs(state).mean() > 0.01


def test_gru_step_agrees(model):
    _, gru, S, _ = model
    items = [3, 17, 299, 3, 0, 150]
    ref, jit = np.zeros(S, np.float32), np.zeros(S, np.float32)
    for i in items:
        reference.gru_step(ref, i, *gru)
        cpu.gru_step(jit, i, *gru)
        np.testing.assert_allclose(jit, ref, rtol=1e-5, atol=1e-6)


def test_gru_step_batch_agrees_with_single_steps(model):
    _, gru, S, _ = model
    rng = np.random.default_rng(1)
    states = np.stack([state_after(gru, S, list(rng.integers(0, N_ITEMS, size=n))) for n in (0, 1, 4, 9)])
    items = np.array([5, 5, 280, 41], dtype=np.int64)
    expected = states.copy()
    for row, i in zip(expected, items):
        reference.gru_step(row, int(i), *gru)
    for impl in (reference, cpu):
        got = states.copy()
        impl.gru_step_batch(got, items, *gru)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def allowed(n: int, exclude, available) -> np.ndarray:
    mask = np.ones(n, bool) if len(available) == 0 else available.astype(bool)
    mask[exclude] = False
    return mask


FILTERS = {
    "none": (np.zeros(0, np.int64), np.zeros(0, np.uint8)),
    "exclude": (np.array([7, 7, 299, 0, 150], np.int64), np.zeros(0, np.uint8)),
    "available": (np.zeros(0, np.int64), (np.arange(N_ITEMS) % 3 != 1).astype(np.uint8)),
    "both": (np.arange(0, N_ITEMS, 7, dtype=np.int64), (np.arange(N_ITEMS) % 5 != 2).astype(np.uint8)),
}


@pytest.mark.parametrize("filters", FILTERS, ids=str)
@pytest.mark.parametrize("k", [1, 20])
def test_score_topk_agrees_and_filters(model, filters, k):
    arrays, gru, S, H = model
    exclude, available = FILTERS[filters]
    h = state_after(gru, S, [1, 2, 3])[S - H:]
    scores = arrays["Wy"] @ h + arrays["By"]
    mask = allowed(N_ITEMS, exclude, available)
    no_near_ties(scores[mask], k)
    ref_i, ref_s = reference.score_topk(h, arrays["Wy"], arrays["By"], k, exclude, available)
    jit_i, jit_s = cpu.score_topk(h, arrays["Wy"], arrays["By"], k, exclude, available)
    assert ref_i.dtype == jit_i.dtype == np.int64 and jit_s.dtype == np.float32
    np.testing.assert_array_equal(jit_i, ref_i)
    np.testing.assert_allclose(jit_s, ref_s, rtol=1e-5, atol=1e-5)
    # the reference is the definition: the best k allowed items, best first
    assert len(ref_i) == k and mask[ref_i].all() and np.all(np.diff(ref_s) <= 0)
    assert ref_s[-1] >= scores[mask & ~np.isin(np.arange(N_ITEMS), ref_i)].max()


def test_score_topk_returns_fewer_when_few_items_are_allowed(model):
    arrays, gru, S, H = model
    h = state_after(gru, S, [4])[S - H:]
    available = np.zeros(N_ITEMS, np.uint8)
    available[[10, 20, 30, 40]] = 1
    exclude = np.array([20], np.int64)
    for impl in (reference, cpu):
        items, scores = impl.score_topk(h, arrays["Wy"], arrays["By"], 8, exclude, available)
        assert sorted(items.tolist()) == [10, 30, 40] and len(scores) == 3
        items, _ = impl.score_topk(h, arrays["Wy"], arrays["By"], 8, np.array([10, 30, 40, 20]), available)
        assert len(items) == 0


def test_ties_go_to_the_lower_item_index():
    W = np.ones((50, 4), np.float32)
    bias = np.zeros(50, np.float32)
    bias[[3, 30]] = 1.0
    h = np.ones(4, np.float32)
    for impl in (reference, cpu):
        items, _ = impl.score_topk(h, W, bias, 5, np.array([0], np.int64), np.zeros(0, np.uint8))
        assert items.tolist() == [3, 30, 1, 2, 4]


def test_score_topk_batch_agrees_with_single_sessions(model):
    arrays, gru, S, H = model
    hs = np.stack([state_after(gru, S, items)[S - H:] for items in ([], [1], [9, 8, 7], [250, 3])])
    excludes = [np.zeros(0, np.int64), np.array([5, 6, 7], np.int64), np.arange(0, 200, 2), np.array([299])]
    offsets = np.cumsum([0] + [len(e) for e in excludes]).astype(np.int64)
    flat = np.concatenate(excludes).astype(np.int64)
    available = (np.arange(N_ITEMS) % 4 != 0).astype(np.uint8)
    k = 10
    for impl in (reference, cpu):
        items, scores = impl.score_topk_batch(hs, arrays["Wy"], arrays["By"], k, flat, offsets, available)
        assert items.shape == (4, k) and scores.shape == (4, k)
        for b in range(4):
            one_i, one_s = reference.score_topk(hs[b], arrays["Wy"], arrays["By"], k, excludes[b], available)
            np.testing.assert_array_equal(items[b], one_i)
            np.testing.assert_allclose(scores[b], one_s, rtol=1e-5, atol=1e-5)


def test_score_topk_batch_pads_rows_with_fewer_allowed_items(model):
    arrays, gru, S, H = model
    hs = np.zeros((2, H), np.float32)
    available = np.zeros(N_ITEMS, np.uint8)
    available[[1, 2]] = 1
    for impl in (reference, cpu):
        items, scores = impl.score_topk_batch(hs, arrays["Wy"], arrays["By"], 3, np.array([2], np.int64),
                                              np.array([0, 1, 1], np.int64), available)
        assert items.tolist() == [[1, -1, -1], sorted([1, 2], key=lambda i: -arrays["By"][i]) + [-1]]
        assert np.isneginf(scores[0, 1:]).all() and np.isneginf(scores[1, 2])


@pytest.mark.parametrize("filters", ["none", "both"])
def test_rollout_agrees_and_never_repeats(model, filters):
    arrays, gru, S, _ = model
    exclude, available = FILTERS[filters]
    state = state_after(gru, S, [11, 12])
    before = state.copy()
    ref_i, ref_s = reference.rollout(state, 12, *gru, arrays["Wy"], arrays["By"], exclude, available)
    jit_i, jit_s = cpu.rollout(state, 12, *gru, arrays["Wy"], arrays["By"], exclude, available)
    np.testing.assert_array_equal(state, before)
    np.testing.assert_array_equal(jit_i, ref_i)
    np.testing.assert_allclose(jit_s, ref_s, rtol=1e-4, atol=1e-5)
    assert len(ref_i) == 12 and len(set(ref_i.tolist())) == 12
    assert allowed(N_ITEMS, exclude, available)[ref_i].all()
    # each pick is the top-1 of the state that has seen the picks before it
    fed = state.copy()
    for i in ref_i[:3]:
        top, _ = reference.score_topk(fed[S - arrays["Wy"].shape[1]:], arrays["Wy"], arrays["By"], 1,
                                      np.concatenate([exclude, ref_i[:list(ref_i).index(i)]]), available)
        assert top[0] == i
        reference.gru_step(fed, int(i), *gru)


def test_rollout_stops_when_items_run_out(model):
    arrays, gru, S, _ = model
    available = np.zeros(N_ITEMS, np.uint8)
    available[[3, 4, 5]] = 1
    for impl in (reference, cpu):
        items, _ = impl.rollout(np.zeros(S, np.float32), 10, *gru, arrays["Wy"], arrays["By"],
                                np.array([4], np.int64), available)
        assert sorted(items.tolist()) == [3, 5]


def test_float16_item_matrix_gives_the_top_k_of_the_rounded_matrix(model):
    arrays, gru, S, H = model
    W16 = arrays["Wy"].astype(np.float16)
    bits = W16.view(np.uint16)
    rounded = W16.astype(np.float32)
    exclude, available = FILTERS["both"]
    for items in ([1], [2, 3, 4], [200]):
        h = state_after(gru, S, items)[S - H:]
        no_near_ties((rounded @ h + arrays["By"])[allowed(N_ITEMS, exclude, available)], 20)
        want_i, want_s = reference.score_topk(h, rounded, arrays["By"], 20, exclude, available)
        for impl in (reference, cpu):
            got_i, got_s = impl.score_topk(h, bits, arrays["By"], 20, exclude, available)
            np.testing.assert_array_equal(got_i, want_i)
            np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)
        hs = np.stack([h, h * 0.5])
        m = len(exclude)
        got_i, _ = cpu.score_topk_batch(hs, bits, arrays["By"], 20, np.concatenate([exclude, exclude]),
                                        np.array([0, m, 2 * m], np.int64), available)
        np.testing.assert_array_equal(got_i[0], want_i)


def test_as_f32_reads_float16_bits_and_floats_alike_in_python_and_jitted_code():
    from numba import njit

    from backend.kernels.serving_cpu import _as_f32

    halves = np.array([0.0, -1.5, 65504.0, 2.0 ** -24, np.inf], dtype=np.float16)
    bits, floats = halves.view(np.uint16), np.array([0.1, -3.25, 1e30])

    @njit
    def jitted(values):
        out = np.empty(values.shape[0], np.float32)
        for i in range(values.shape[0]):
            out[i] = _as_f32(values[i])
        return out

    np.testing.assert_array_equal([_as_f32(b) for b in bits], halves.astype(np.float32))
    np.testing.assert_array_equal(jitted(bits), halves.astype(np.float32))
    np.testing.assert_array_equal([_as_f32(f) for f in floats], floats.astype(np.float32))
    np.testing.assert_array_equal(jitted(floats), floats.astype(np.float32))


def _mmr_case(seed, m=40, n_items=120, D=8):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_items, D)).astype(np.float32)
    vectors[rng.choice(n_items, 10, replace=False)] = 0.0          # items without a vector: categories decide
    norms = np.sqrt(np.square(vectors, dtype=np.float64).sum(axis=1))
    categories = rng.integers(-1, 6, n_items).astype(np.int32)
    candidates = rng.choice(n_items, m, replace=False).astype(np.int64)
    relevance = np.sort(rng.random(m))[::-1].copy()
    return candidates, relevance, vectors, norms, categories


@pytest.mark.parametrize("diversity", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("cap", [0, 2])
def test_mmr_rerank_agrees_with_the_reference(diversity, cap):
    for seed in range(4):
        args = _mmr_case(seed)
        got = cpu.mmr_rerank(*args, diversity, 10, cap)
        want = reference.mmr_rerank(*args, diversity, 10, cap)
        np.testing.assert_array_equal(got, want)
        assert len(set(got.tolist())) == len(got)


def test_mmr_rerank_without_diversity_keeps_the_order_and_caps_categories():
    candidates, relevance, vectors, norms, categories = _mmr_case(11)
    for impl in (cpu, reference):
        assert impl.mmr_rerank(candidates, relevance, vectors, norms, categories, 0.0, 10, 0).tolist() \
            == list(range(10))
        capped = impl.mmr_rerank(candidates, relevance, vectors, norms, categories, 0.0, 40, 1)
        cats = categories[candidates[capped]]
        assert len(set(cats[cats >= 0].tolist())) == np.count_nonzero(cats >= 0)   # one per category at most


def test_mmr_rerank_leaves_out_a_near_duplicate_and_uses_categories_without_vectors():
    vectors = np.array([[1, 0], [0.99, 0.01], [0, 1], [0, 0], [0, 0]], dtype=np.float32)
    norms = np.sqrt(np.square(vectors, dtype=np.float64).sum(axis=1))
    categories = np.array([0, 0, 1, 2, 2], dtype=np.int32)
    relevance = np.array([1.0, 0.95, 0.5])
    for impl in (cpu, reference):
        # item 1 is nearly item 0: with diversity the distant item 2 comes second
        assert impl.mmr_rerank(np.array([0, 1, 2]), relevance, vectors, norms, categories, 0.5, 3, 0).tolist() \
            == [0, 2, 1]
        assert impl.mmr_rerank(np.array([0, 1, 2]), relevance, vectors, norms, categories, 0.0, 3, 0).tolist() \
            == [0, 1, 2]
        # items 3 and 4 have no vector and share a category: item 4 goes after the unrelated item 0
        got = impl.mmr_rerank(np.array([3, 4, 0]), relevance, vectors, norms, categories, 0.5, 3, 0)
        assert got.tolist() == [0, 2, 1]


# ---------------------------------------------------------------- the GRU4Rec + item-kNN blend (backend/blend.py)

def context_neighbours(seed: int = 5, m: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A context item's neighbours (distinct items, a few -1 = none) and their normalised similarities."""
    rng = np.random.default_rng(seed)
    nb = rng.choice(N_ITEMS, size=m, replace=False).astype(np.int64)
    nb[-3:] = -1
    sims = rng.uniform(0.1, 1.0, size=m).astype(np.float32)
    sims[nb < 0] = 0
    return nb, (sims / sims.sum()).astype(np.float32)


@pytest.mark.parametrize("filters", FILTERS, ids=str)
@pytest.mark.parametrize("k,w", [(1, 0.35), (20, 0.35), (20, 2.0)])
def test_blend_topk_agrees_and_filters(model, filters, k, w):
    arrays, gru, S, H = model
    exclude, available = FILTERS[filters]
    nb, nw = context_neighbours()
    h = state_after(gru, S, [1, 2, 3])[S - H:]
    logits = (arrays["Wy"] @ h + arrays["By"]).astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p[nb[nb >= 0]] += w * nw[nb >= 0]                   # the definition, written out once more
    mask = allowed(N_ITEMS, exclude, available)
    no_near_ties(p[mask], k, tol=1e-6)
    ref_i, ref_s = reference.blend_topk(h, arrays["Wy"], arrays["By"], k, exclude, available, nb, nw, w)
    jit_i, jit_s = cpu.blend_topk(h, arrays["Wy"], arrays["By"], k, exclude, available, nb, nw, w)
    assert jit_i.dtype == np.int64 and jit_s.dtype == np.float32
    np.testing.assert_array_equal(jit_i, ref_i)
    np.testing.assert_allclose(jit_s, ref_s, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ref_i, np.flatnonzero(mask)[np.argsort(-p[mask], kind="stable")][:k])
    assert mask[ref_i].all()


def test_blend_topk_batch_agrees_with_single_sessions_and_pads(model):
    arrays, gru, S, H = model
    hs = np.stack([state_after(gru, S, items)[S - H:] for items in ([], [1], [9, 8, 7], [250, 3])])
    excludes = [np.zeros(0, np.int64), np.array([5, 6, 7], np.int64), np.arange(0, 200, 2), np.array([299])]
    contexts = [context_neighbours(), (np.zeros(0, np.int64), np.zeros(0, np.float32)), context_neighbours(),
                context_neighbours()]
    ws = np.array([0.35, 2.0, 0.0, 50.0])
    offsets = np.cumsum([0] + [len(e) for e in excludes]).astype(np.int64)
    c_offsets = np.cumsum([0] + [len(c[0]) for c in contexts]).astype(np.int64)
    flat_nb = np.concatenate([c[0] for c in contexts]).astype(np.int64)
    flat_nw = np.concatenate([c[1] for c in contexts]).astype(np.float32)
    available = (np.arange(N_ITEMS) % 4 != 0).astype(np.uint8)
    k = 10
    for impl in (reference, cpu):
        items, scores = impl.blend_topk_batch(hs, arrays["Wy"], arrays["By"], k, np.concatenate(excludes), offsets,
                                              available, flat_nb, flat_nw, c_offsets, ws)
        assert items.shape == (4, k) and scores.shape == (4, k) and items.dtype == np.int64
        for b in range(4):
            one_i, one_s = reference.blend_topk(hs[b], arrays["Wy"], arrays["By"], k, excludes[b], available,
                                                *contexts[b], ws[b])
            np.testing.assert_array_equal(items[b], one_i)
            np.testing.assert_allclose(scores[b], one_s, rtol=1e-5, atol=1e-7)
        # a row with fewer allowed items than k is padded with -1 / -inf
        few = np.zeros(N_ITEMS, np.uint8)
        few[[3, 30]] = 1
        items, scores = impl.blend_topk_batch(hs[:2], arrays["Wy"], arrays["By"], 4, np.zeros(0, np.int64),
                                              np.zeros(3, np.int64), few, flat_nb[:0], flat_nw[:0],
                                              np.zeros(3, np.int64), ws[:2])
        assert sorted(items[0, :2]) == [3, 30] and (items[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()


def test_blend_topk_without_neighbours_or_weight_is_the_gru4rec_order(model):
    arrays, gru, S, H = model
    h = state_after(gru, S, [4, 9])[S - H:]
    none, empty = np.zeros(0, np.int64), np.zeros(0, np.uint8)
    plain, _ = cpu.score_topk(h, arrays["Wy"], arrays["By"], 10, none, empty)
    nb, nw = context_neighbours()
    for impl in (reference, cpu):
        np.testing.assert_array_equal(impl.blend_topk(h, arrays["Wy"], arrays["By"], 10, none, empty, none,
                                                      np.zeros(0, np.float32), 0.35)[0], plain)
        np.testing.assert_array_equal(impl.blend_topk(h, arrays["Wy"], arrays["By"], 10, none, empty, nb, nw,
                                                      0.0)[0], plain)
        boosted = impl.blend_topk(h, arrays["Wy"], arrays["By"], 10, none, empty, nb, nw, 100.0)[0]
        assert boosted[0] == nb[np.argmax(nw)]             # item-to-item dominates a large weight
