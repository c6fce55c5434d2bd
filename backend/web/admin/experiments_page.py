"""Experiments (A/B tests per placement): create, start, pause, stop; each arm's KPIs per 1,000 recommendation
requests with 95% intervals and the uplift over the control; the daily cumulative uplift chart with its band;
CSV exports. Statistics and attribution live in backend/experiments/; this module only shows them."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.algorithms import ARM_CHOICES
from backend.experiments.attribution import ExperimentSessions, collect
from backend.experiments.report import (METHOD, METRIC_BY_NAME, METRICS, report_csv, report_from_sessions, series_csv,
                                        series_from_sessions)
from backend.store.experiments import (TRANSITIONS, Arm, ExperimentError, ExperimentInfo, change_status,
                                       create_experiment, delete_experiment, get_experiment, list_experiments)
from backend.store.placements import PlacementError, controls_from_json, list_placements
from backend.web.admin.auth import admin_view
from backend.web.admin.charts import uplift_chart
from backend.web.admin.render import error_page, headers, page, redirect, site_or_404, site_url
from backend.web.http import services

ARM_ROWS = 5
REPORT_TTL_S = 60.0          # the report reads every event of the exposed sessions: reuse it for a minute
SHOWN_METRICS = ("clicks", "ctr", "views", "plays", "watch_seconds", "carts", "purchases", "revenue",
                 "session_purchases", "session_revenue")

@dataclass
class _Cached:
    """One read of an experiment's sessions, the report made from it, and the daily series asked for so far."""
    made: float                          # time.monotonic()
    status: str
    data: ExperimentSessions
    report: dict
    series: dict[str, dict]


# (engine, experiment id, created_ms) -> _Cached: created_ms tells a new experiment from a deleted draft whose id
# the database gave again, the engine tells apart two stores of one process (tests, the simulator)
_cache: dict[tuple[int, int, int], _Cached] = {}
_cache_lock = threading.Lock()


def _report(engine, exp: ExperimentInfo, metric: str | None, fresh: bool) -> tuple[dict, dict | None]:
    """(report, daily cumulative series of ``metric`` or None) from one read of the store, reused for
    REPORT_TTL_S (or until the experiment's status changes); ``fresh`` reads again."""
    key, now = (id(engine), exp.id, exp.created_ms), time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None or fresh or now - hit.made >= REPORT_TTL_S or hit.status != exp.status:
        data = collect(engine, exp)
        hit = _Cached(now, exp.status, data, report_from_sessions(exp, data), {})
        with _cache_lock:
            for old in [k for k, v in _cache.items() if now - v.made >= REPORT_TTL_S]:
                del _cache[old]
            _cache[key] = hit
    series = hit.series.get(metric)
    if series is None and metric is not None:
        series = hit.series[metric] = series_from_sessions(exp, hit.data, metric)
    return hit.report, series


async def _site_and_experiment(request: Request):
    """(site, sites, experiment, None), or (..., the 404 page) when the site or its experiment is unknown."""
    site, sites, missing = await site_or_404(request)
    if missing:
        return site, sites, None, missing
    try:
        exp = await run_in_threadpool(get_experiment, services(request).engine, request.path_params["exp_id"])
    except ExperimentError:
        exp = None
    if exp is None or exp.site_id != site["id"]:
        return site, sites, None, error_page(request, 404, "No such experiment",
                                             "That experiment does not exist (any more).")
    return site, sites, exp, None


def _form_arms(form) -> list[Arm]:
    arms = []
    for k in range(ARM_ROWS):
        name = str(form.get(f"arm{k}_name", "")).strip()
        if not name:
            continue
        try:
            share = int(str(form.get(f"arm{k}_share", "")).strip())
        except ValueError:
            raise ExperimentError(f"arm {name}: the share must be a whole number") from None
        arms.append(Arm(name, str(form.get(f"arm{k}_algorithm", "")), share,
                        _arm_settings(name, str(form.get(f"arm{k}_settings", "")).strip())))
    return arms


def _arm_settings(name: str, text: str):
    """An arm's overrides of the placement's controls, typed as JSON (``{"diversity": 0.3}``)."""
    if not text:
        return ()
    try:
        return controls_from_json(json.loads(text))
    except ValueError as exc:
        if isinstance(exc, PlacementError):
            raise ExperimentError(f"arm {name}: settings: {exc}") from None
        raise ExperimentError(f"arm {name}: settings must be JSON such as {{\"diversity\": 0.3}}") from None


@admin_view
async def experiments_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    engine = services(request).engine
    exps = await run_in_threadpool(list_experiments, engine, site["id"])
    placements = await run_in_threadpool(list_placements, engine, site["id"])
    form = request.state.form if error else {}
    return page(request, "experiments.html", {
        "title": f"Experiments of {site['name']}", "site": site, "sites": sites, "active": "experiments",
        "experiments": exps, "placements": placements, "algorithms": ARM_CHOICES, "rows": range(ARM_ROWS),
        "error": error, "form": form}, status=status)


@admin_view
async def create(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form, engine = request.state.form, services(request).engine
    name = str(form.get("name", "")).strip()
    try:
        exp = await run_in_threadpool(create_experiment, engine, site["id"], str(form.get("placement", "")).strip(),
                                      name, _form_arms(form))
    except ExperimentError as exc:
        return await experiments_page.__wrapped__(request, error=str(exc), status=400)
    return redirect(site_url(site, f"experiments/{exp.id}"), "experiment-created", exp.name)


@admin_view
async def detail(request: Request) -> Response:
    site, sites, exp, missing = await _site_and_experiment(request)
    if missing:
        return missing
    metric = request.query_params.get("metric", "clicks")
    if metric not in METRIC_BY_NAME:
        metric = "clicks"
    report, series = await run_in_threadpool(_report, services(request).engine, exp, metric,
                                             "fresh" in request.query_params)
    labels = {m.name: m.label for m in METRICS}
    return page(request, "experiment.html", {
        "title": f"Experiment {exp.name}", "site": site, "sites": sites, "active": "experiments", "exp": exp,
        "report": report, "series": series, "metric": metric, "labels": labels, "shown": SHOWN_METRICS,
        "method": METHOD, "chart": uplift_chart(series, label=f"Cumulative uplift of {labels[metric]} over "
                                                          f"{exp.control.name}, 95% band")})


@admin_view
async def action(request: Request) -> Response:
    site, sites, exp, missing = await _site_and_experiment(request)
    if missing:
        return missing
    what = request.path_params["action"]
    if what not in TRANSITIONS and what != "delete":
        return error_page(request, 404, "No such action", "An experiment can be started, paused, stopped or "
                                                          "(a draft) deleted.")
    engine, svc = services(request).engine, services(request)
    try:
        if what == "delete":
            await run_in_threadpool(delete_experiment, engine, exp.id)
            svc.experiments.invalidate(site["id"])
            return redirect(site_url(site, "experiments"), "experiment-deleted", exp.name)
        await run_in_threadpool(change_status, engine, exp.id, what)
    except ExperimentError as exc:
        return error_page(request, 409, "Not possible", str(exc))
    svc.experiments.invalidate(site["id"])
    return redirect(site_url(site, f"experiments/{exp.id}"), f"experiment-{what}", exp.name)


@admin_view
async def export_csv(request: Request) -> Response:
    """``?series=METRIC``: the daily cumulative series; else the report (one row per arm and metric)."""
    site, sites, exp, missing = await _site_and_experiment(request)
    if missing:
        return missing
    metric = request.query_params.get("series")
    if metric is not None and metric not in METRIC_BY_NAME:
        return error_page(request, 400, "No such metric", f"series: one of {', '.join(METRIC_BY_NAME)}")
    report, series = await run_in_threadpool(_report, services(request).engine, exp, metric, False)
    body = report_csv(report) if metric is None else series_csv(series)
    name = f"experiment-{exp.id}-{metric or 'report'}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={**headers(), "Content-Disposition": f'attachment; filename="{name}"'})
