"""``GET /v1/recommendations`` (api.md): check the request, answer on a worker thread, attach catalogue metadata,
give the answer a ``rec`` id and record the served list for attribution (written in batches, not waited for).
A running experiment on the placement picks the arm that serves the session (backend/experiments/routing.py).

Answering needs no database: keys, placements, experiments, catalogues and models are in memory, and a served
list that cannot be queued (the database slow or down) is dropped and counted, never failing the answer. Each key
may ask ``UPNEXT_RATE_KEY_RECOMMENDATIONS`` times a second (429 with Retry-After beyond)."""
from __future__ import annotations

import asyncio
import math
import secrets

from starlette.requests import Request
from starlette.responses import Response

from backend.clock import now_ms
from backend.experiments.routing import recommend_routed, route
from backend.item_ids import DESCRIPTION, valid_id
from backend.serving.recommender import RecRequest
from backend.store.placements import MAX_N, NAME_RE
from backend.web.event_schema import SESSION_RE
from backend.web.http import cors_headers, json_response, problem, services

MAX_LIST = 100          # ids in `exclude` or `history`
HISTORY_KEPT = 20       # the widget's window; older ids cannot change the answer


def _ids(raw: str | None, field: str, problems: list) -> tuple[str, ...]:
    if not raw:
        return ()
    ids = tuple(i for i in raw.split(",") if i)
    if len(ids) > MAX_LIST:
        problems.append({"field": field, "message": f"at most {MAX_LIST} comma-separated item ids"})
    elif not all(map(valid_id, ids)):
        problems.append({"field": field, "message": f"comma-separated item ids, each {DESCRIPTION}"})
    return ids


def parse(request: Request) -> tuple[dict, list]:
    q = request.query_params
    problems: list[dict] = []
    placement = q.get("placement", "")
    if not NAME_RE.match(placement):
        problems.append({"field": "placement", "message": "required: the placement name (data-upnext), "
                                                          "1-64 of a-z 0-9 - _"})
    session = q.get("session") or None
    if session is not None and not SESSION_RE.match(session):
        problems.append({"field": "session", "message": "22-64 characters of A-Z a-z 0-9 _ -"})
    item = q.get("item") or None
    if item is not None and not valid_id(item):
        problems.append({"field": "item", "message": DESCRIPTION})
    n = None
    if q.get("n"):
        if not q["n"].isdigit() or not 1 <= int(q["n"]) <= MAX_N:
            problems.append({"field": "n", "message": f"an integer between 1 and {MAX_N}"})
        else:
            n = int(q["n"])
    history = _ids(q.get("history"), "history", problems)[-HISTORY_KEPT:]
    exclude = _ids(q.get("exclude"), "exclude", problems)
    return {"placement": placement, "session": session, "item": item, "n": n, "history": history,
            "exclude": exclude}, problems


async def recommendations(request: Request) -> Response:
    svc = services(request)
    origin = request.headers.get("origin")
    key = request.query_params.get("key", "")
    site = svc.sites.by_publishable_key(key) if key else None
    if site is None:
        return problem(401, "unknown key: use the site's publishable key (pk_...)",
                       headers=cors_headers(origin) if origin and svc.sites.any_site_allows(origin) else None)
    if origin is not None and not site.allows_origin(origin):
        svc.origins.note(site.id, "refused", origin)
        return problem(403, f"origin {origin[:200]} is not allowed for this key")
    svc.origins.note(site.id, "recommendations", origin)
    headers = {**cors_headers(origin), "Cache-Control": "no-store"}
    wait = svc.rec_limiter.take(key)
    if wait:
        svc.metrics.recommendations_limited.inc()
        return problem(429, "too many recommendation requests for this key: slow down",
                       headers={**headers, "Retry-After": str(max(1, math.ceil(wait)))})
    return await answer(request, site.id, headers)


async def answer(request: Request, site_id: int, headers: dict, *, record: bool = True) -> Response:
    """The answer to a request of the site ``site_id`` (already checked). ``record=False`` (the admin's
    placement preview): the answer is neither recorded as a served list nor counted in the metrics, so previews
    never count as traffic."""
    svc = services(request)
    args, problems = parse(request)
    if problems:
        return problem(400, "invalid request", problems, headers=headers)
    req = RecRequest(site_id=site_id, **args)

    def answer():
        cfg = svc.placements.get(site_id, req.placement)
        snap = svc.catalog.snapshot(site_id)
        routing = route(svc.experiments.running(site_id, req.placement), req.session)
        return cfg, snap, routing, recommend_routed(req, cfg, svc.models.get(site_id), snap, routing)

    cfg, snap, routing, ans = await asyncio.get_running_loop().run_in_executor(svc.rec_pool, answer)
    rec = "r_" + secrets.token_urlsafe(12)
    items = []
    for item_id in ans.item_ids:
        meta = snap.get(item_id)
        items.append(meta.as_json() if meta is not None else {"id": item_id})
    arm = routing.arm.name if routing.arm else None
    if record:
        queued = svc.served.put_nowait([{"rec": rec, "site_id": site_id, "session": req.session,
                                         "placement": req.placement, "algorithm": ans.algorithm, "arm": arm,
                                         "experiment_id": routing.experiment_id if arm else None,
                                         "fallback": ans.fallback, "items": ans.item_ids, "served_ms": now_ms()}])
        if not queued:          # the writer is full or stopped: the answer still goes out, unrecorded
            svc.metrics.served_dropped.inc()
        svc.metrics.recommendations.labels(req.placement if cfg.configured else "(unconfigured)", ans.algorithm,
                                           (ans.fallback or "none").split(":")[0]).inc()
    return json_response({"rec": rec, "placement": req.placement, "algorithm": ans.algorithm, "arm": arm,
                          "experiment": routing.as_json(), "fallback": ans.fallback, "title": cfg.title or None,
                          "items": items}, headers=headers)
