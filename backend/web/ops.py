"""Operations endpoints: ``GET /healthz`` (is the database reachable?) and ``GET /metrics`` (Prometheus)."""
from __future__ import annotations

import asyncio
import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.store.db import ping
from backend.web.http import json_response, services

HEALTH_TIMEOUT_S = 3.0


async def healthz(request: Request) -> Response:
    try:
        await asyncio.wait_for(run_in_threadpool(ping, services(request).engine), HEALTH_TIMEOUT_S)
    except Exception as exc:  # any failure to reach the database is an unhealthy answer, not a crash
        return json_response({"status": "error", "database": f"{exc.__class__.__name__}: {exc}"[:300]}, 503)
    return json_response({"status": "ok", "database": "ok", "process": os.getpid()})


async def metrics(request: Request) -> Response:
    svc = services(request)
    svc.metrics.pending_events.set(svc.writer.pending)
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
