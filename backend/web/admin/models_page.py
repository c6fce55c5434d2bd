"""The models page: train now (a background run, with live progress), tune then train (a tuning run whose best
parameters become the scheduled retraining's and can be trained with in one click), every model's scores on its
held-out day next to popularity and item-kNN, promote and roll back, and the scheduled retraining with its
gate."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.errors import UpnextError
from backend.gru4rec.params import PRESETS
from backend.retraining.first_model import first_model_state
from backend.retraining.scheduler import ScheduleError, save_schedule
from backend.retraining.supervisor import log_tail
from backend.retraining.tuning_run import request_string
from backend.store import runs as run_store
from backend.store.schedules import get_schedule
from backend.store.trained_models import list_models, promote, rollback
from backend.tuning import TuneError
from backend.web.admin.auth import admin_view
from backend.web.admin.render import error_page, headers, page, redirect, site_or_404, site_url
from backend.web.http import json_response, services

RUNS_SHOWN = 15


def params_from_form(form) -> str:
    """The preset (if any) then the parameter string, as ``upnext train --params`` takes them."""
    preset, extra = str(form.get("preset", "")).strip(), str(form.get("params", "")).strip()
    if preset and preset not in PRESETS:
        raise UpnextError(f"unknown preset {preset!r}")
    return ",".join(p for p in (preset, extra) if p)


async def _render(request: Request, site: dict, sites: list, *, error: str | None = None,
                  schedule_error: str | None = None, tune_error: str | None = None, status: int = 200,
                  form: dict | None = None) -> Response:
    engine = services(request).engine

    def load():
        runs = run_store.list_runs(engine, site["id"], RUNS_SHOWN)
        models = list_models(engine, site["id"])
        first = None if any(m.live for m in models) else first_model_state(engine, services(request).settings,
                                                                             site["id"], live_model_id=None)
        return runs, models, get_schedule(engine, site["id"]), first

    runs, models, schedule, first_model = await run_in_threadpool(load)
    promoted = [m for m in models if m.promoted_ms is not None]
    live = next((m for m in models if m.live), None)
    can_roll_back = live is not None and any(not m.live and m.promoted_ms <= live.promoted_ms for m in promoted)
    tails = {r.id: log_tail(r.log_path, 1500) for r in runs if r.status == "failed"}
    newest = next((r for r in runs if r.status == "succeeded" and "other_models" in r.result), None)
    tuned = next((r for r in runs if r.status == "succeeded" and "tuning" in r.result), None)
    return page(request, "models.html", {
        "title": f"Models of {site['name']}", "site": site, "sites": sites, "active": "models", "runs": runs,
        "models": models, "live": live, "schedule": schedule, "presets": list(PRESETS), "error": error,
        "schedule_error": schedule_error, "can_roll_back": can_roll_back, "tails": tails, "form": form or {},
        "newest": newest, "first_model": first_model, "newest_rows": _newest_rows(newest, {m.id: m for m in models}),
        "tuned": tuned, "tune_error": tune_error},
        status=status)


def _newest_rows(run, models: dict) -> list[dict]:
    """Every model scored on the newest held-out day (that of the latest successful run), then the baselines."""
    if run is None:
        return []
    scores = run.result.get("metrics", {})
    rows = [{"label": f"#{run.result.get('model_id')}", "note": "trained by this run", "live":
             models.get(run.result.get("model_id")) is not None and models[run.result["model_id"]].live,
             **scores.get("gru4rec", {})}]
    blend = scores.get("gru4rec", {}).get("blend")
    if blend:   # the gru4rec_blend placement algorithm with the weight this run chose on this very day
        rows.append({"label": f"#{run.result.get('model_id')} as gru4rec_blend", "live": False,
                     "note": f"w {blend['weight']:g} on the last {blend['context']} item(s), chosen on this day",
                     **blend})
    for model_id, other in sorted(run.result.get("other_models", {}).items(), key=lambda kv: -int(kv[0])):
        record = models.get(int(model_id))
        rows.append({"label": f"#{model_id}", "note": "", "live": bool(record and record.live), **other})
    rows += [{"label": "Popularity", "note": "fitted by this run", "live": False, **scores.get("popular", {})},
             {"label": "Item-kNN", "note": "fitted by this run", "live": False, **scores.get("itemknn", {})}]
    return rows


@admin_view
async def models_page(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    return missing or await _render(request, site, sites)


@admin_view
async def train(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form = request.state.form
    try:
        params = params_from_form(form)
        await run_in_threadpool(services(request).admin.supervisor.start_run, site["id"], params,
                                trigger="manual", gate=form.get("gate") == "1")
    except (UpnextError, OSError) as exc:
        return await _render(request, site, sites, error=str(exc), status=400,
                             form={"preset": form.get("preset", ""), "params": form.get("params", "")})
    return redirect(site_url(site, "models"), "run-started", anchor="runs")


@admin_view
async def tune(request: Request) -> Response:
    """Start a tuning run ("tune, then train"): its best parameters become the site's scheduled-retraining
    parameters, and the page offers to train with them when it is done."""
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form = request.state.form
    try:
        raw = str(form.get("trials", "")).strip()
        if not raw.isdigit():
            raise TuneError("trials: a whole number")
        request_text = request_string(int(raw), str(form.get("fixed", "")).strip())
        await run_in_threadpool(services(request).admin.supervisor.start_run, site["id"], request_text,
                                trigger="tune")
    except (UpnextError, OSError) as exc:
        return await _render(request, site, sites, tune_error=str(exc), status=400,
                             form={"trials": form.get("trials", ""), "fixed": form.get("fixed", "")})
    return redirect(site_url(site, "models"), "tuning-started", anchor="runs")


@admin_view
async def cancel(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    try:
        await run_in_threadpool(services(request).admin.supervisor.cancel, request.path_params["run_id"], site["id"])
    except UpnextError as exc:
        return error_page(request, 404, "No such run", str(exc))
    return redirect(site_url(site, "models"), "run-cancelled", anchor="runs")


@admin_view
async def run_json(request: Request) -> Response:
    """One run's status and progress, polled by the page while it trains."""
    site, _, missing = await site_or_404(request)
    if missing:
        return missing
    run = await run_in_threadpool(run_store.get_run, services(request).engine, request.path_params["run_id"])
    if run is None or run.site_id != site["id"]:
        return json_response({"error": "no such run"}, 404, headers=headers())
    fields = ("id", "status", "phase", "progress", "error", "model_id", "active", "started_ms", "heartbeat_ms")
    return json_response({k: v for k, v in run.as_json().items() if k in fields}, headers=headers())


@admin_view
async def promote_model(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    model_id = request.path_params["model_id"]
    try:
        await run_in_threadpool(promote, services(request).engine, site["id"], model_id)
    except UpnextError as exc:
        return await _render(request, site, sites, error=str(exc), status=400)
    return redirect(site_url(site, "models"), "promoted", f"#{model_id}")


@admin_view
async def roll_back(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    try:
        model_id = await run_in_threadpool(rollback, services(request).engine, site["id"])
    except UpnextError as exc:
        return await _render(request, site, sites, error=str(exc), status=400)
    return redirect(site_url(site, "models"), "rolled-back", f"#{model_id}")


@admin_view
async def schedule(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form = request.state.form
    try:
        every = float(str(form.get("every_hours", "")).strip())
        await run_in_threadpool(lambda: save_schedule(services(request).engine, site["id"],
                                                      enabled=form.get("enabled") == "1", every_hours=every,
                                                      params=params_from_form(form)))
    except ValueError as exc:
        message = str(exc) if isinstance(exc, (ScheduleError, UpnextError)) else "retrain every: a number of hours"
        return await _render(request, site, sites, schedule_error=message, status=400)
    except UpnextError as exc:
        return await _render(request, site, sites, schedule_error=str(exc), status=400)
    return redirect(site_url(site, "models"), "schedule-saved")
