"""``POST /v1/events`` (api.md): validate, check key, origin and rates, group-commit, then reply 202."""
from __future__ import annotations

import math

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.clock import now_ms
from backend.store.group_commit import StoreBusy, StoreUnavailable
from backend.web.event_schema import MAX_BODY_BYTES, BatchError, check_envelope, check_events
from backend.web.http import BodyTooLarge, cors_headers, problem, read_body, services


async def preflight(request: Request) -> Response:
    """CORS preflight for JSON posts. It carries no key, so any site's allowed origin passes here; the
    POST itself is then checked against the key's own site."""
    origin = request.headers.get("origin")
    if origin and services(request).sites.any_site_allows(origin):
        return Response(status_code=204, headers=cors_headers(origin, "POST, OPTIONS"))
    return Response(status_code=403, headers={"Vary": "Origin"})


async def post_events(request: Request) -> Response:
    svc = services(request)
    origin = request.headers.get("origin")
    # Before the key is known, a page from any configured origin may read the error.
    early_cors = cors_headers(origin) if origin and svc.sites.any_site_allows(origin) else {"Vary": "Origin"}

    def refuse(status: int, reason: str, error: str, problems=None, count: int = 1, headers=None):
        svc.metrics.events_rejected.labels(reason).inc(count)
        return problem(status, error, problems, headers)

    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return refuse(413, "too_large", f"body over {MAX_BODY_BYTES // 1024} KiB", headers=early_cors)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return refuse(400, "malformed", f"body is not valid JSON: {exc}"[:300], headers=early_cors)
    count = len(payload["events"]) if isinstance(payload, dict) and isinstance(payload.get("events"), list) else 1
    try:
        key, session, raw_events = check_envelope(payload)
    except BatchError as exc:
        reason = "too_large" if exc.status == 413 else "invalid"
        return refuse(exc.status, reason, "invalid batch", [p.as_json() for p in exc.problems], count, early_cors)

    site = svc.sites.by_publishable_key(key)
    if site is None:
        return refuse(401, "unknown_key", "unknown key: use the site's publishable key (pk_...)", count=count,
                      headers=early_cors)
    if origin is not None and not site.allows_origin(origin):
        svc.origins.note(site.id, "refused", origin)
        return refuse(403, "origin", f"origin {origin[:200]} is not allowed for this key", count=count)
    if origin is None and site.require_origin:
        return refuse(403, "no_origin", "this site takes events only from its pages: the request has no Origin "
                                        "header", count=count)
    cors = cors_headers(origin)

    now = now_ms()
    try:
        events = check_events(raw_events, now)
    except BatchError as exc:
        return refuse(400, "invalid", "invalid events", [p.as_json() for p in exc.problems], count, cors)

    n = len(events)
    wait = svc.session_limiter.take(session, n)
    if not wait:
        wait = svc.key_limiter.take(key, n)
        if wait:                                  # a refused request spends no session budget either
            svc.session_limiter.give_back(session, n)
    if wait:
        return refuse(429, "rate_limited", "too many events: slow down", count=n,
                      headers={**cors, "Retry-After": str(max(1, math.ceil(wait)))})

    site_id = site.id
    rows = [{**ev, "site_id": site_id, "session": session, "received_ms": now} for ev in events]
    try:
        await svc.writer.submit(rows)
    except StoreBusy:
        return refuse(503, "busy", "server busy: retry shortly", count=n, headers={**cors, "Retry-After": "1"})
    except StoreUnavailable:
        return refuse(503, "unavailable", "events cannot be stored right now: retry later", count=n,
                      headers={**cors, "Retry-After": "5"})
    svc.origins.note(site_id, "events", origin)
    for listener in svc.event_listeners:
        listener(site, session, events)
    return Response(b'{"accepted":%d}' % n, status_code=202, headers=cors, media_type="application/json")
