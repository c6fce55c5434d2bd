"""Catalogue API: ``PUT /v1/items`` (upsert, JSON array or JSON lines) and ``DELETE /v1/items/{id}``.

Both need the site's secret key (``Authorization: Bearer sk_...``). A PUT is all or nothing: one invalid
record refuses the whole request, with every problem listed.
"""
from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.store.items import ItemInvalid, clean_item, delete_item, save_items
from backend.store.tables import ID_MAX
from backend.web.http import (MAX_JSON_DEPTH, BodyTooLarge, json_response, problem, read_body, scan_json, services,
                              site_for_secret, unauthorized)

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_ITEMS = 50_000
MAX_PROBLEMS = 100


def _storage_problems(record) -> list[tuple[str, str]]:
    """(field, message) for what the store cannot keep: NUL characters (PostgreSQL text refuses them) and
    attributes nested deeper than MAX_JSON_DEPTH."""
    if not isinstance(record, dict):
        return []
    out = []
    for name, value in record.items():
        nul, depth = scan_json(value)
        if nul or "\x00" in str(name):
            out.append((str(name)[:60], "must not contain NUL characters"))
        elif depth > MAX_JSON_DEPTH:
            out.append((str(name)[:60], f"must not nest more than {MAX_JSON_DEPTH} levels deep"))
    return out


def _parse_records(body: bytes) -> list:
    text = body.lstrip()
    if text.startswith(b"["):
        records = orjson.loads(text)
        if not isinstance(records, list):
            raise ValueError("expected a JSON array of items")
        return records
    return [orjson.loads(line) for line in body.splitlines() if line.strip()]


async def put_items(request: Request) -> Response:
    svc = services(request)
    site = site_for_secret(request)
    if site is None:
        return unauthorized()
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return problem(413, f"body over {MAX_BODY_BYTES // 2**20} MiB: split the catalogue into several requests")
    try:
        records = _parse_records(body)
    except (orjson.JSONDecodeError, ValueError) as exc:
        return problem(400, f"body must be a JSON array of items or JSON lines: {exc}"[:300])
    if not records:
        return problem(400, "no items in the body")
    if len(records) > MAX_ITEMS:
        return problem(413, f"at most {MAX_ITEMS} items per request, got {len(records)}")
    rows, problems = [], []
    for i, record in enumerate(records):
        found = _storage_problems(record)
        bad = {f for f, _ in found}
        try:   # the other fields are still checked, so that every problem is listed
            rows.append(clean_item({k: v for k, v in record.items() if k not in bad} if bad else record))
        except ItemInvalid as exc:
            found += [p for p in exc.problems if p[0] not in bad]
        if found:
            item_id = record.get("id") if isinstance(record, dict) else None
            problems += [{"index": i, "id": item_id if isinstance(item_id, str) else None, "field": f,
                          "message": m} for f, m in found]
    if problems:
        return problem(400, "invalid items: nothing was stored", problems[:MAX_PROBLEMS])
    latest = {row["id"]: row for row in rows}   # the last record of an id wins

    await run_in_threadpool(save_items, svc.engine, site.id, latest.values())
    await run_in_threadpool(svc.catalog.refresh)   # this process's next answer already sees the change
    svc.metrics.items_written.inc(len(latest))
    return json_response({"upserted": len(latest)})


async def delete_item_route(request: Request) -> Response:
    svc = services(request)
    site = site_for_secret(request)
    if site is None:
        return unauthorized()
    item_id = request.path_params["item_id"]
    storable = 0 < len(item_id) <= ID_MAX and item_id.isprintable()    # the rule every stored id passed
    if not storable or not await run_in_threadpool(delete_item, svc.engine, site.id, item_id):
        return problem(404, f"no item {item_id[:256]!r} in this site's catalogue")
    await run_in_threadpool(svc.catalog.refresh)
    return Response(status_code=204)
