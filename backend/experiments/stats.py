"""Confidence intervals for experiment KPIs, computed over sessions (the independent units).

A KPI "per 1,000 requests" is a ratio of two per-session sums: R = sum_s x_s / sum_s n_s (x_s: the session's
clicks, revenue, ...; n_s: its recommendation requests). Requests of one session are not independent (one
visitor), sessions are, so the variance comes from the spread between sessions. We use the delta method:

    Var(R) ~= Var_s(x_s - R n_s) / (S * mean(n)^2)      (sample variance, ddof=1, over the S sessions)

which is the first-order (linearised) variance of a ratio of means. It is closed-form, so the report of every
arm, every metric and every day of the cumulative chart costs a few vector operations, and it is accurate once an
arm has a few hundred sessions (tests compare it with a session bootstrap). The interval is R +- z * SE, its
lower end cut at 0 for non-negative data (small counts: the normal interval would reach below 0).

The relative uplift of an arm over the control, U = R_arm / R_control - 1, gets its interval on the log scale
(arms have disjoint sessions, so their estimates are independent):

    SE(log(R_a / R_c)) = sqrt((SE_a / R_a)^2 + (SE_c / R_c)^2),   U in exp(log(R_a / R_c) +- z * SE) - 1

which never goes below -100% and is not symmetric, as a ratio's interval should not be.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054     # two-sided 95%: the 97.5% quantile of the standard normal


@dataclass(frozen=True)
class RatioEstimate:
    """sum(x) / sum(n) * scale with its delta-method interval; ``value`` is None when sum(n) is 0, and the
    interval is None with fewer than two sessions."""
    sessions: int
    numerator: float            # sum of x over the sessions
    denominator: float          # sum of n
    value: float | None
    se: float | None
    low: float | None
    high: float | None

    def as_json(self) -> dict:
        return {"total": self.numerator, "value": self.value, "low": self.low, "high": self.high}


def ratio_estimate(x: np.ndarray, n: np.ndarray, *, scale: float = 1.0, z: float = Z95) -> RatioEstimate:
    """x, n: (S,) float per-session numerator and denominator sums; returns sum(x)/sum(n) * scale, delta-method
    interval. Sessions with n = 0 and x = 0 still count (they are exposed sessions with nothing to show)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    s, sx, sn = len(x), float(x.sum()), float(n.sum())
    if sn <= 0:
        return RatioEstimate(s, sx, sn, None, None, None, None)
    r = sx / sn
    if s < 2:
        return RatioEstimate(s, sx, sn, r * scale, None, None, None)
    residual = x - r * n
    var = float(residual.var(ddof=1)) / (s * (sn / s) ** 2)
    se = math.sqrt(max(var, 0.0)) * scale
    value = r * scale
    low = value - z * se
    if low < 0 <= x.min() and n.min() >= 0:
        low = 0.0               # a count or an amount cannot be negative: the normal interval is cut at 0
    return RatioEstimate(s, sx, sn, value, se, low, value + z * se)


@dataclass(frozen=True)
class Uplift:
    """Relative change of an arm over the control (0.12 = +12%), with its interval (None where undefined)."""
    value: float | None
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        """The interval excludes 0 (no change)."""
        return self.low is not None and (self.low > 0 or self.high < 0)

    def as_json(self) -> dict:
        return {"uplift": self.value, "uplift_low": self.low, "uplift_high": self.high,
                "significant": self.significant}


def relative_uplift(arm: RatioEstimate, control: RatioEstimate, *, z: float = Z95) -> Uplift:
    """U = R_arm / R_control - 1 with the log-scale delta interval; undefined (None) when the control is 0 or
    missing, and without interval when either side is 0 or has no standard error."""
    if arm.value is None or control.value is None or control.value == 0:
        return Uplift(None, None, None)
    point = arm.value / control.value - 1.0
    if arm.value == 0 or arm.se is None or control.se is None:
        return Uplift(point, None, None)
    log_ratio = math.log(arm.value / control.value)
    se = math.hypot(arm.se / arm.value, control.se / control.value)
    return Uplift(point, math.exp(log_ratio - z * se) - 1.0, math.exp(log_ratio + z * se) - 1.0)


def bootstrap_ratio(x: np.ndarray, n: np.ndarray, *, scale: float = 1.0, reps: int = 2000,
                    seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of sum(x)/sum(n) * scale from resampling sessions with replacement: the slow,
    assumption-light cross-check of ``ratio_estimate`` (tests and the offline analysis, not the report)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    draws = rng.integers(0, len(x), size=(reps, len(x)))
    ratios = x[draws].sum(axis=1) / n[draws].sum(axis=1) * scale
    tail = (1.0 - level) / 2
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)
