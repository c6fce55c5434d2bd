"""An experiment's results: KPIs per arm per 1,000 recommendation requests with 95% intervals, the uplift of each
arm over the control, the daily cumulative uplift series (for a chart with its band) and CSV exports.

These are the functions the admin page and ``upnext simulate`` call (no HTTP endpoint of their own):

    experiment_report(engine, experiment_id)            -> dict (arms, KPIs, intervals, uplifts)
    uplift_series(engine, experiment_id, "clicks")      -> dict (one point per day, cumulative)
    experiment_csv(engine, experiment_id)               -> str  (one row per arm and metric)
    series_csv(series)                                  -> str  (one row per day and arm)

Attribution rules: backend/experiments/attribution.py; statistics: backend/experiments/stats.py.
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

import numpy as np

from backend.clock import now_ms
from backend.experiments.attribution import ExperimentSessions, collect
from backend.experiments.stats import Z95, RatioEstimate, Uplift, ratio_estimate, relative_uplift
from backend.store.db import Engine
from backend.store.experiments import ExperimentInfo, get_experiment

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    numerator: str          # a counter of attribution.COUNTERS
    denominator: str
    scale: float            # 1000: "per 1,000 requests"; 1: a rate


METRICS = (
    Metric("clicks", "Clicks per 1,000 requests", "clicks", "requests", 1000.0),
    Metric("impressions", "Viewable impressions per 1,000 requests", "impressions", "requests", 1000.0),
    Metric("ctr", "Click-through rate on viewable impressions", "clicks", "impressions", 1.0),
    Metric("views", "Views from recommendations per 1,000 requests", "views", "requests", 1000.0),
    Metric("plays", "Plays from recommendations per 1,000 requests", "plays", "requests", 1000.0),
    Metric("watch_seconds", "Watch seconds from recommendations per 1,000 requests", "watch_seconds",
           "requests", 1000.0),
    Metric("carts", "Add-to-carts from recommendations per 1,000 requests", "carts", "requests", 1000.0),
    Metric("purchases", "Purchases from recommendations per 1,000 requests", "purchases", "requests", 1000.0),
    Metric("revenue", "Revenue from recommendations per 1,000 requests", "revenue", "requests", 1000.0),
    Metric("session_purchases", "Purchases in exposed sessions (any source) per 1,000 requests",
           "session_purchases", "requests", 1000.0),
    Metric("session_revenue", "Revenue in exposed sessions (any source) per 1,000 requests", "session_revenue",
           "requests", 1000.0),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}
METHOD = ("delta method over sessions (sessions are the independent units); uplift interval on the log scale; "
          "95% normal intervals")


def _estimates(data: ExperimentSessions, metric: Metric, through_day: int | None = None,
               totals: dict | None = None) -> list[RatioEstimate]:
    """One estimate per arm (in arm order) over the sessions exposed by ``through_day`` (all when None)."""
    totals = totals if totals is not None else {}
    for counter in (metric.numerator, metric.denominator):
        if counter not in totals:
            totals[counter] = data.totals(counter, through_day)
    exposed = np.ones(len(data.ids), dtype=bool) if through_day is None else data.first_day <= through_day
    out = []
    for k in range(len(data.arm_names)):
        mine = exposed & (data.arm == k)
        out.append(ratio_estimate(totals[metric.numerator][mine], totals[metric.denominator][mine],
                                  scale=metric.scale, z=Z95))
    return out


def report_from_sessions(exp: ExperimentInfo, data: ExperimentSessions) -> dict:
    """The report (see ``experiment_report``) from already collected sessions."""
    totals: dict = {}
    per_metric = {m.name: _estimates(data, m, totals=totals) for m in METRICS}
    n_sessions = np.bincount(data.arm[data.arm >= 0], minlength=len(exp.arms))
    all_sessions = max(int(n_sessions.sum()), 1)
    share_total = sum(a.share for a in exp.arms)
    arms = []
    for k, arm in enumerate(exp.arms):
        kpis = {}
        for m in METRICS:
            est = per_metric[m.name][k]
            entry = est.as_json()
            uplift = relative_uplift(est, per_metric[m.name][0]) if k else Uplift(None, None, None)
            entry.update(uplift.as_json())
            kpis[m.name] = entry
        arms.append({"name": arm.name, "algorithm": arm.algorithm, "overrides": arm.as_json().get("overrides", {}),
                     "share": arm.share,
                     "share_expected": arm.share / share_total,
                     "share_observed": int(n_sessions[k]) / all_sessions,
                     "sessions": int(n_sessions[k]),
                     "requests": int(per_metric["clicks"][k].denominator), "kpis": kpis})
    return {"experiment": exp.as_json(), "control": exp.control.name, "confidence": CONFIDENCE,
            "method": METHOD, "generated_ms": now_ms(), "days": data.n_days,
            "metrics": [{"name": m.name, "label": m.label, "per": m.scale} for m in METRICS], "arms": arms}


def experiment_report(engine: Engine, experiment_id: int) -> dict:
    """Per arm: sessions, requests, observed vs configured traffic share, and for every metric in METRICS its
    total, value (per 1,000 requests, or a rate for ``ctr``), 95% interval (``low``, ``high``) and, except for
    the control, the relative uplift over the control with its 95% interval and whether it excludes 0.
    Values are None where undefined (no requests yet), intervals None with fewer than two sessions."""
    exp = get_experiment(engine, experiment_id)
    return report_from_sessions(exp, collect(engine, exp))


def series_from_sessions(exp: ExperimentInfo, data: ExperimentSessions, metric: str = "clicks") -> dict:
    """The daily cumulative series (see ``uplift_series``) from already collected sessions."""
    m = METRIC_BY_NAME[metric]
    days = []
    for d in range(data.n_days):
        ests = _estimates(data, m, through_day=d)
        arms = {}
        for k, arm in enumerate(exp.arms):
            entry = {"value": ests[k].value, "low": ests[k].low, "high": ests[k].high,
                     "sessions": ests[k].sessions}
            if k:
                entry.update(relative_uplift(ests[k], ests[0]).as_json())
            arms[arm.name] = entry
        day_ms = data.day0_ms + d * 86_400_000
        days.append({"day": time.strftime("%Y-%m-%d", time.gmtime(day_ms / 1000)), "day_ms": day_ms, "arms": arms})
    return {"experiment_id": exp.id, "metric": m.name, "label": m.label, "control": exp.control.name,
            "confidence": CONFIDENCE, "days": days}


def uplift_series(engine: Engine, experiment_id: int, metric: str = "clicks") -> dict:
    """For each UTC day since the start, the metric per arm on all data up to the end of that day, and each
    arm's uplift over the control with its 95% band: the cumulative uplift chart (x = day, line = uplift,
    band = uplift_low..uplift_high)."""
    if metric not in METRIC_BY_NAME:
        raise ValueError(f"metric must be one of {', '.join(METRIC_BY_NAME)}")
    exp = get_experiment(engine, experiment_id)
    return series_from_sessions(exp, collect(engine, exp), metric)


CSV_COLUMNS = ("experiment_id", "experiment", "placement", "arm", "algorithm", "share", "sessions", "requests",
               "metric", "total", "value", "low", "high", "uplift", "uplift_low", "uplift_high", "significant")


def report_csv(report: dict) -> str:
    """One row per arm and metric (CSV_COLUMNS), numbers unrounded, empty cells where undefined."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    exp = report["experiment"]
    for arm in report["arms"]:
        for m in report["metrics"]:
            k = arm["kpis"][m["name"]]
            writer.writerow([exp["id"], exp["name"], exp["placement"], arm["name"], arm["algorithm"], arm["share"],
                             arm["sessions"], arm["requests"], m["name"],
                             *(_cell(k[c]) for c in ("total", "value", "low", "high", "uplift", "uplift_low",
                                                     "uplift_high", "significant"))])
    return out.getvalue()


def series_csv(series: dict) -> str:
    """One row per day and arm: day, arm, value, low, high, uplift, uplift_low, uplift_high."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("day", "metric", "arm", "sessions", "value", "low", "high", "uplift", "uplift_low",
                     "uplift_high"))
    for day in series["days"]:
        for name, e in day["arms"].items():
            writer.writerow([day["day"], series["metric"], name, e["sessions"],
                             *(_cell(e.get(c)) for c in ("value", "low", "high", "uplift", "uplift_low",
                                                         "uplift_high"))])
    return out.getvalue()


def experiment_csv(engine: Engine, experiment_id: int) -> str:
    """The report as CSV text (for the admin page's download button; no authentication of its own)."""
    return report_csv(experiment_report(engine, experiment_id))


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(float(v)) if isinstance(v, float) else str(v)
