"""Operations endpoints: ``GET /healthz`` (can the database be written?) and ``GET /metrics`` (Prometheus)."""
from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import Response

from backend.web.http import json_response, services


async def healthz(request: Request) -> Response:
    """Answers from the background health check (a committed heartbeat write every second, services.py), so a
    request never waits on the database and never makes it write. The body says ok or error only: what failed
    (and where the database is) goes to the log, not to anonymous clients."""
    svc = services(request)
    if not svc.healthy():
        return json_response({"status": "error", "database": "error"}, 503, headers={"Retry-After": "5"})
    return json_response({"status": "ok", "database": "ok", "process": os.getpid()})


async def metrics(request: Request) -> Response:
    svc = services(request)
    svc.metrics.pending_events.set(svc.writer.pending)
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
