"""Intervals of ratio KPIs over sessions (delta method) and of the uplift (log scale): a hand-checked example,
the agreement with a session bootstrap, the coverage of the 95% interval, and the undefined cases."""
import math

import numpy as np
import pytest

from backend.experiments.stats import Z95, bootstrap_ratio, ratio_estimate, relative_uplift


def test_hand_checked_ratio_interval():
    # Control, 4 sessions: clicks x = [2, 0, 1, 3], requests n = [4, 2, 2, 4].
    #   R = sum x / sum n = 6 / 12 = 0.5
    #   residuals d = x - R n = [2-2, 0-1, 1-1, 3-2] = [0, -1, 0, 1]; mean 0
    #   sample variance of d = (0 + 1 + 0 + 1) / (4 - 1) = 2/3
    #   mean requests = 3;  Var(R) = (2/3) / (4 * 3^2) = 1/54;  SE = sqrt(1/54) = 0.1360828
    #   95%: 0.5 -+ 1.959964 * 0.1360828 = 0.5 -+ 0.2667173 = [0.2332827, 0.7667173]; per 1,000 requests x1000.
    est = ratio_estimate([2, 0, 1, 3], [4, 2, 2, 4], scale=1000)
    assert est.sessions == 4 and est.numerator == 6 and est.denominator == 12
    assert est.value == pytest.approx(500.0)
    assert est.se == pytest.approx(1000 * math.sqrt(1 / 54))
    assert (est.low, est.high) == pytest.approx((233.2827, 766.7173), abs=1e-4)


def test_hand_checked_uplift_interval():
    # Arm, 4 sessions: x = [3, 1, 2, 4], n = [4, 2, 2, 4]: R = 10/12 = 0.833333
    #   d = x - R n = [-1/3, -2/3, 1/3, 2/3]; variance = (1/9 + 4/9 + 1/9 + 4/9) / 3 = 10/27
    #   Var(R) = (10/27) / (4 * 9) = 10/972;  SE = 0.1014301
    # Control as above: R = 0.5, SE = sqrt(1/54).
    #   uplift = 0.833333 / 0.5 - 1 = 0.666667
    #   SE(log ratio) = sqrt((SE_a/R_a)^2 + (SE_c/R_c)^2) = sqrt((10/972)/(25/36) + (1/54)/(1/4))
    #                 = sqrt(1/67.5 + 2/27) = sqrt(4/45) = 0.2981424
    #   log ratio = ln(5/3) = 0.5108256; -+ 1.959964 * 0.2981424 = -+ 0.5843483 -> [-0.0735227, 1.0951739]
    #   uplift interval = exp(.) - 1 = [-0.0708850, 1.9897028]: includes 0, not significant.
    control = ratio_estimate([2, 0, 1, 3], [4, 2, 2, 4])
    arm = ratio_estimate([3, 1, 2, 4], [4, 2, 2, 4])
    assert arm.se == pytest.approx(math.sqrt(10 / 972))
    up = relative_uplift(arm, control)
    assert up.value == pytest.approx(2 / 3)
    assert (up.low, up.high) == pytest.approx((-0.0708850, 1.9897028), abs=1e-6)
    assert not up.significant


def test_scale_moves_value_and_interval_together():
    a = ratio_estimate([1, 2, 0, 5], [3, 3, 1, 6])
    b = ratio_estimate([1, 2, 0, 5], [3, 3, 1, 6], scale=1000)
    assert (b.value, b.low, b.high) == pytest.approx((1000 * a.value, 1000 * a.low, 1000 * a.high))


def _sessions(rng, s, p, mean_requests=4.0):
    n = 1 + rng.poisson(mean_requests - 1, s)
    # a per-session click propensity: requests of one session are correlated, as in real traffic
    q = np.clip(rng.beta(2, 2 * (1 - p) / p, s), 0, 1)
    return rng.binomial(n, q).astype(float), n.astype(float)


def test_delta_interval_agrees_with_session_bootstrap():
    x, n = _sessions(np.random.default_rng(3), 3000, 0.3)
    est = ratio_estimate(x, n)
    low, high = bootstrap_ratio(x, n, reps=2000, seed=4)
    width = est.high - est.low
    assert abs(est.low - low) < 0.1 * width and abs(est.high - high) < 0.1 * width


def test_95_percent_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    # 400 experiments of 500 sessions drawn from one population whose true ratio we know from a huge sample
    rng = np.random.default_rng(11)
    big_x, big_n = _sessions(rng, 2_000_000, 0.2)
    truth = big_x.sum() / big_n.sum()
    covered = 0
    for _ in range(400):
        idx = rng.integers(0, len(big_x), 500)
        est = ratio_estimate(big_x[idx], big_n[idx])
        covered += est.low <= truth <= est.high
    # binomial(400, 0.95): sd 4.4 -> 3 sd either side is 367..393
    assert 367 <= covered <= 393, covered


def test_requests_correlated_within_sessions_widen_the_interval():
    # the same 2,000 requests with 40% clicks: as 2,000 one-request sessions, or as 100 sessions of 20 requests
    # that either all click or never do. The naive per-request interval would be the same; ours must not be.
    independent = ratio_estimate(np.r_[np.ones(800), np.zeros(1200)], np.ones(2000))
    clustered = ratio_estimate(np.r_[np.full(40, 20.0), np.zeros(60)], np.full(100, 20.0))
    assert independent.value == clustered.value == 0.4
    assert clustered.se > 4 * independent.se
    assert independent.se == pytest.approx(math.sqrt(0.4 * 0.6 / 1999), rel=1e-9)


def test_undefined_cases():
    assert ratio_estimate([], []).value is None
    assert ratio_estimate([0, 0], [0, 0]).value is None
    one = ratio_estimate([2], [5])
    assert one.value == 0.4 and one.low is None and one.se is None
    zero_control = ratio_estimate([0, 0, 0], [1, 2, 3])
    some = ratio_estimate([1, 0, 2], [1, 2, 3])
    assert relative_uplift(some, zero_control).value is None
    none_left = relative_uplift(zero_control, some)
    assert none_left.value == -1.0 and none_left.low is None and not none_left.significant


def test_z_is_the_two_sided_95_percent_normal_quantile():
    from statistics import NormalDist

    assert Z95 == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-12)


def test_interval_of_a_rare_count_is_cut_at_zero():
    # 1 click in 40 one-request sessions: 0.025 -+ 1.96 * 0.0250 reaches below 0; a count cannot
    est = ratio_estimate(np.r_[1.0, np.zeros(39)], np.ones(40))
    assert est.low == 0.0 and est.high == pytest.approx(0.025 + Z95 * math.sqrt(0.025 * 0.975 / 39))
