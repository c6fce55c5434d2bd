"""Small HTTP helpers shared by the handlers: fast JSON replies, bounded body reads, CORS headers."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


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
