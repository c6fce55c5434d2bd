"""The web application, composed in one place: routes, middleware, and the lifespan that owns the long-lived
components (backend/services.py)."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from backend.logs import configure
from backend.server_metrics import Metrics, MetricsMiddleware
from backend.services import Services
from backend.settings import Settings
from backend.store.db import DatabaseError
from backend.web import admin, demo_site, events_api, items_api, openapi, ops, placements_api, recommend, widget
from backend.web.admin.catalog_page import remove_leftover_uploads
from backend.web.http import database_unavailable

log = logging.getLogger(__name__)


def routes() -> list[Route]:
    return [
        Route("/v1/events", events_api.post_events, methods=["POST"]),
        Route("/v1/events", events_api.preflight, methods=["OPTIONS"]),
        Route("/v1/recommendations", recommend.recommendations, methods=["GET"]),
        Route("/v1/items", items_api.put_items, methods=["PUT"]),
        Route("/v1/items/{item_id:path}", items_api.delete_item_route, methods=["DELETE"]),
        Route("/v1/placements", placements_api.list_route, methods=["GET"]),
        Route("/v1/placements/{name}", placements_api.get_route, methods=["GET"]),
        Route("/v1/placements/{name}", placements_api.put_route, methods=["PUT"]),
        Route("/v1/placements/{name}", placements_api.delete_route, methods=["DELETE"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route(openapi.PATH, openapi.openapi, methods=["GET"]),
        *widget.routes(),
        *demo_site.routes(),
        *admin.routes(),
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        svc = Services.build(settings, metrics)
        app.state.services = svc
        await asyncio.to_thread(remove_leftover_uploads, settings.upload_dir)
        await svc.start()
        log.info("upnext started", extra={"database": svc.engine.url.render_as_string(hide_password=True)})
        try:
            yield
        finally:
            await svc.stop()

    return Starlette(routes=routes(), middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
                     exception_handlers={DatabaseError: database_unavailable}, lifespan=lifespan)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory backend.app:app_from_env`` (each worker process reads the env)."""
    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    return create_app(settings)
