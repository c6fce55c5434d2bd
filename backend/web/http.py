"""Small HTTP helpers shared by the handlers: fast JSON replies, bounded body reads, the secret-key check and JSON
body scan of the write APIs (catalogue, placements), CORS headers, and the reply to a database fault (503 with Retry-After, CORS for an allowed origin, no traceback per request)."""
from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.logs import FaultLog

log = logging.getLogger(__name__)
RETRY_AFTER_DB_S = 5
MAX_JSON_DEPTH = 32     # nesting of a JSON body's values (item attributes, placement rules)
# a database fault seen by requests is logged once (with its traceback) until the health check passes again
request_faults = FaultLog(log, "request: database")


class BodyTooLarge(Exception):
    pass


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")


def problem(status: int, error: str, problems: list[dict] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An error reply: ``{"error": "...", "problems": [{"field": ..., "message": ...}]}``."""
    body: dict[str, Any] = {"error": error}
    if problems:
        body["problems"] = problems
    return json_response(body, status, headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or BodyTooLarge as soon as it passes ``limit`` bytes (never buffered past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def cors_headers(origin: str | None, methods: str = "GET, POST, OPTIONS") -> dict[str, str]:
    """Headers that let a browser page at ``origin`` read the reply (callers check the origin first)."""
    if not origin:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": methods, "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Expose-Headers": "Retry-After", "Access-Control-Max-Age": "600"}


def services(request: Request):
    """The app's long-lived components (engine, writer, directories...), created by its lifespan."""
    return request.app.state.services


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The app's handler of ``DatabaseError`` (store/db.py) raised by any handler: a clean 503 with Retry-After,
    readable by a page of an allowed origin (origins are checked from memory), logged once per fault period."""
    svc = services(request)
    request_faults.failed(exc, route=request.url.path[:100])
    route = getattr(request.scope.get("route"), "path", None) or "unmatched"
    svc.metrics.database_unavailable.labels(route).inc()
    origin = request.headers.get("origin")
    headers = cors_headers(origin) if origin and svc.sites.any_site_allows(origin) else {"Vary": "Origin"}
    return problem(503, "the database cannot answer right now: retry later",
                   headers={**headers, "Retry-After": str(RETRY_AFTER_DB_S)})


def site_for_secret(request: Request):
    """The site whose secret key the request sends (Authorization: Bearer sk_...), or None."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.startswith("sk_"):
        return None
    return services(request).sites.by_secret_key(token.strip())


def unauthorized() -> Response:
    return problem(401, "send the site's secret key as Authorization: Bearer sk_...",
                   headers={"WWW-Authenticate": 'Bearer realm="upnext"'})


def scan_json(value) -> tuple[bool, int]:
    """(holds a NUL character in a string or key, nesting depth) of a parsed JSON value; iterative, since bodies
    may nest a thousand levels deep (past Python's recursion limit, which the store's JSON encoder hits)."""
    stack, nul, depth = [(value, 0)], False, 0
    while stack:
        v, d = stack.pop()
        depth = max(depth, d)
        if isinstance(v, str):
            nul = nul or "\x00" in v
        elif isinstance(v, dict):
            nul = nul or any("\x00" in k for k in v)
            stack += [(x, d + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, d + 1) for x in v]
    return nul, depth
