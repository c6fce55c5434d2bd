"""Popularity sampling (spec §3): support^alpha by inverse CDF, exactly searchsorted's answer, a store
consumed one row per step and drawn again when used up."""
import numpy as np
import pytest
from scipy.stats import chisquare

from backend.kernels import training_cpu as ops_cpu, training_reference as ops_reference
from backend.gru4rec.sampler import SampleStore


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.75, 1.0])
def test_distribution_is_support_to_the_power_alpha(alpha):
    support = np.array([1, 2, 5, 10, 40, 100, 3, 0, 7, 250])
    store = SampleStore(support, alpha, n_sample=1000, store_size=200_000, rng=np.random.default_rng(0))
    draws = np.concatenate([store.next() for _ in range(200)])
    counts = np.bincount(draws, minlength=len(support))
    assert counts[support == 0].sum() == 0                 # never drawn
    weights = support.astype(float) ** alpha * (support > 0)
    expected = weights / weights.sum() * len(draws)
    used = support > 0
    result = chisquare(counts[used], expected[used])
    assert result.pvalue > 1e-3, (counts, expected.round())
    # and a clearly different distribution is rejected: the test has power
    wrong = support.astype(float) ** (alpha + 0.5) * (support > 0)
    assert chisquare(counts[used], (wrong / wrong.sum() * len(draws))[used]).pvalue < 1e-6


def test_numba_twin_equals_searchsorted_exactly():
    rng = np.random.default_rng(3)
    for n_items in (1, 2, 7, 1000):
        cdf = np.cumsum(rng.integers(0, 50, n_items).astype(float) ** 0.5)
        cdf[-1] = max(cdf[-1], 1.0)
        cdf = np.maximum.accumulate(cdf)
        u = np.concatenate([rng.random(20_000), [0.0, np.nextafter(1.0, 0.0)]])
        ref, out = np.empty(len(u), np.int32), np.empty(len(u), np.int32)
        ops_reference.draw_popularity_samples(cdf, u, ref)
        ops_cpu.draw_popularity_samples(cdf, u, out)
        np.testing.assert_array_equal(out, ref)


def test_store_is_consumed_row_by_row_and_redrawn():
    store = SampleStore(np.array([5, 1, 1]), 1.0, n_sample=4, store_size=12, rng=np.random.default_rng(1))
    assert store.rows == 3
    rows = [store.next().copy() for _ in range(7)]
    assert store.generations == 3
    assert all(r.shape == (4,) and r.dtype == np.int32 for r in rows)


def test_no_samples_gives_empty_rows():
    store = SampleStore(np.array([1, 2]), 0.5, n_sample=0, store_size=100, rng=np.random.default_rng(0))
    assert store.next().shape == (0,)
