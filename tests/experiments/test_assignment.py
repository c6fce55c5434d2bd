"""Arm assignment by hashing the session id with the experiment's salt: stable, in proportion to the shares,
independent between experiments, and the same as a plain floating-point reference."""
import base64
import random
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chi2_contingency, chisquare

from backend.experiments.assignment import RunningExperiment, session_hash
from backend.store.experiments import Arm

ARMS = (Arm("control", "popular", 2), Arm("knn", "item_to_item", 1), Arm("gru", "gru4rec_next", 1))


def session_ids(count: int, seed: int) -> list[str]:
    """Widget-like ids: 24 url-safe base64 characters (random 18 bytes)."""
    rng = random.Random(seed)
    return [base64.urlsafe_b64encode(rng.randbytes(18)).decode() for _ in range(count)]


def test_a_session_keeps_its_arm_across_calls_and_processes():
    ids = session_ids(2000, 1)
    first = [RunningExperiment(7, "salt-a", ARMS).assign(s).name for s in ids]
    again = RunningExperiment(7, "salt-a", ARMS)          # a fresh object: what another process would build
    assert [again.assign(s).name for s in ids] == first
    assert [again.assign(s).name for s in ids] == first


def test_shares_within_tolerance_on_100k_sessions():
    # 100,000 ids, shares 2:1:1. Tolerance: a chi-square goodness-of-fit test at p > 0.001, and each arm
    # within 3 standard deviations of its expected count (sd = sqrt(N p (1 - p)), e.g. 158 for p = 1/2).
    ids = session_ids(100_000, 2)
    exp = RunningExperiment(1, "shares", ARMS)
    counts = Counter(exp.assign(s).name for s in ids)
    total = sum(a.share for a in ARMS)
    expected = [len(ids) * a.share / total for a in ARMS]
    observed = [counts[a.name] for a in ARMS]
    assert chisquare(observed, expected).pvalue > 0.001, observed
    for a, o, e in zip(ARMS, observed, expected):
        p = a.share / total
        assert abs(o - e) <= 3 * np.sqrt(len(ids) * p * (1 - p)), (a.name, o, e)


def test_sequential_ids_are_spread_as_well():
    # the hash does not rely on ids being random: counters like "session-000001" split evenly too
    exp = RunningExperiment(1, "seq", (Arm("a", "popular"), Arm("b", "gru4rec_next")))
    counts = Counter(exp.assign(f"session-{k:017d}").name for k in range(20_000))
    assert chisquare([counts["a"], counts["b"]]).pvalue > 0.001, counts


def test_experiments_with_different_salts_assign_independently():
    ids = session_ids(40_000, 3)
    one = RunningExperiment(1, "salt-one", (Arm("a", "popular"), Arm("b", "gru4rec_next")))
    two = RunningExperiment(2, "salt-two", (Arm("x", "popular"), Arm("y", "item_to_item"), Arm("z", "holdout")))
    table = np.zeros((2, 3), dtype=int)
    for s in ids:
        table[int(one.assign(s).name == "b"), "xyz".index(two.assign(s).name)] += 1
    assert chi2_contingency(table).pvalue > 0.001, table


def test_matches_a_floating_point_reference():
    # reference: u = h / 2^64 in [0, 1); arm k takes u in [C_{k-1}, C_k) with C the cumulative share fractions
    exp = RunningExperiment(1, "ref", ARMS)
    cumulative = np.cumsum([a.share for a in ARMS]) / sum(a.share for a in ARMS)
    for s in session_ids(5000, 4):
        u = session_hash("ref", s) / 2.0 ** 64
        assert exp.assign(s) == ARMS[int(np.searchsorted(cumulative, u, side="right"))]


def test_two_equal_arms_split_on_the_top_bit_of_the_hash():
    exp = RunningExperiment(1, "bits", (Arm("a", "popular"), Arm("b", "popular")))
    for s in session_ids(1000, 5):
        assert exp.bucket(s) == session_hash("bits", s) >> 63


@pytest.mark.parametrize("salt", ["a", "another salt", "x" * 63])
def test_hash_is_keyed_by_the_salt(salt):
    ids = session_ids(200, 6)
    other = [session_hash(salt + "!", s) for s in ids]
    assert sum(session_hash(salt, s) == o for s, o in zip(ids, other)) == 0
