"""Placements as code: ``GET /v1/placements``, ``GET/PUT/DELETE /v1/placements/{name}`` with the site's secret key
(``Authorization: Bearer sk_...``), so that a site can keep its placements in version control.

A PUT replaces the placement whole (a field left out takes its default) and is all or nothing: one invalid field
refuses the request, with every problem listed. The body is the placement's JSON as GET shows it
(``backend/store/placements.PlacementConfig.as_json``); its ``name``, when present, must be the path's.
"""
from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.store.placements import (NAME_RE, PlacementError, config_from_json, delete_placement, list_placements,
                                      save_placement)
from backend.web.http import (MAX_JSON_DEPTH, BodyTooLarge, json_response, problem, read_body, scan_json, services,
                              site_for_secret, unauthorized)

MAX_BODY_BYTES = 1024 * 1024


def _name(request: Request) -> str | None:
    name = request.path_params["name"]
    return name if NAME_RE.match(name) else None


def _no_such(name: str) -> Response:
    return problem(404, f"no placement {name[:64]!r} on this site")


async def list_route(request: Request) -> Response:
    site = site_for_secret(request)
    if site is None:
        return unauthorized()
    configs = await run_in_threadpool(list_placements, services(request).engine, site.id)
    return json_response({"placements": [c.as_json() for c in configs]})


async def get_route(request: Request) -> Response:
    site = site_for_secret(request)
    if site is None:
        return unauthorized()
    name = _name(request)
    configs = await run_in_threadpool(list_placements, services(request).engine, site.id) if name else []
    cfg = next((c for c in configs if c.name == name), None)
    return json_response(cfg.as_json()) if cfg is not None else _no_such(request.path_params["name"])


async def put_route(request: Request) -> Response:
    svc = services(request)
    site = site_for_secret(request)
    if site is None:
        return unauthorized()
    name = request.path_params["name"]
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return problem(413, f"body over {MAX_BODY_BYTES // 1024} KiB")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problem(400, f"body must be a JSON object of placement fields: {exc}"[:300])
    nul, depth = scan_json(data)
    if nul or depth > MAX_JSON_DEPTH:
        return problem(400, "invalid placement: nothing was stored",
                       [{"field": "", "message": "no NUL characters, at most 32 levels of nesting"}])
    try:
        cfg = config_from_json(name, data)
    except PlacementError as exc:
        return problem(400, "invalid placement: nothing was stored",
                       [{"field": f, "message": m} for f, m in exc.problems])
    await run_in_threadpool(save_placement, svc.engine, site.id, cfg)
    await run_in_threadpool(svc.placements.invalidate, site.id)   # this process serves it at once
    return json_response(cfg.as_json())


async def delete_route(request: Request) -> Response:
    svc = services(request)
    site = site_for_secret(request)
    if site is None:
        return unauthorized()
    name = _name(request)
    if name is None or not await run_in_threadpool(delete_placement, svc.engine, site.id, name):
        return _no_such(request.path_params["name"])
    await run_in_threadpool(svc.placements.invalidate, site.id)
    return Response(status_code=204)
