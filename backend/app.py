"""The web application, composed in one place: routes, middleware, and the lifespan that owns every
long-lived component (database engine, event writer, site directory, background tasks)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from backend.metrics import Metrics, MetricsMiddleware
from backend.ratelimit import RateLimiter
from backend.settings import Settings
from backend.store.db import check_current, engine_from_settings
from backend.store.group_commit import GroupCommitWriter
from backend.store.models import Event
from backend.store.retention import purge_events
from backend.store.sites import SiteDirectory
from backend.serving.catalog import CatalogCache
from backend.web import catalog, demo, events, ops, widget

log = logging.getLogger(__name__)

CATALOG_POLL_S = 1.0


@dataclass
class Services:
    """Everything a request handler may use; built at start-up, stopped at shutdown."""
    settings: Settings
    engine: Engine
    metrics: Metrics
    sites: SiteDirectory
    writer: GroupCommitWriter
    key_limiter: RateLimiter
    session_limiter: RateLimiter
    catalog: CatalogCache
    # called after events are stored: (site, session, clean events); serving advances session state here
    event_listeners: list[Callable] = field(default_factory=list)
    # called after catalogue writes: (site_id, item ids); caches of item metadata are invalidated here
    catalog_listeners: list[Callable] = field(default_factory=list)
    background: list[asyncio.Task] = field(default_factory=list)


def routes() -> list[Route]:
    return [
        Route("/v1/events", events.post_events, methods=["POST"]),
        Route("/v1/events", events.preflight, methods=["OPTIONS"]),
        Route("/v1/items", catalog.put_items, methods=["PUT"]),
        Route("/v1/items/{item_id:path}", catalog.delete_item_route, methods=["DELETE"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        *widget.routes(),
        *demo.routes(),
    ]


async def _refresh_catalogs(svc: Services) -> None:
    """Notice catalogue writes made by other processes (their version bump) within about a second."""
    while True:
        await asyncio.sleep(CATALOG_POLL_S)
        try:
            await asyncio.to_thread(svc.catalog.refresh)
        except Exception:  # the database may be briefly unavailable: keep serving the last snapshot
            log.exception("catalogue refresh failed")


async def _purge_periodically(svc: Services) -> None:
    while True:
        await asyncio.sleep(svc.settings.purge_interval_s)
        try:
            n = await asyncio.to_thread(purge_events, svc.engine, svc.settings.retention_days)
        except Exception:  # a failed purge is retried next period; it must not stop the server
            log.exception("retention purge failed")
            continue
        svc.metrics.events_purged.inc(n)
        if n:
            log.info("retention purge", extra={"deleted": n, "days": svc.settings.retention_days})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        engine = engine_from_settings(settings)
        check_current(engine)
        sites = SiteDirectory(engine)
        sites.reload()
        writer = GroupCommitWriter(engine, Event.__table__, interval_s=settings.commit_interval_ms / 1000,
                             max_batch=settings.commit_max_events, max_pending=settings.max_pending_events,
                             on_commit=metrics.on_commit)
        svc = Services(settings=settings, engine=engine, metrics=metrics, sites=sites, writer=writer,
                       key_limiter=RateLimiter(settings.rate_key_events, 2 * settings.rate_key_events),
                       session_limiter=RateLimiter(settings.rate_session_events,
                                                   4 * settings.rate_session_events),
                       catalog=CatalogCache(engine))
        app.state.services = svc
        await writer.start()
        svc.background.append(asyncio.create_task(_purge_periodically(svc), name="retention"))
        svc.background.append(asyncio.create_task(_refresh_catalogs(svc), name="catalog-refresh"))
        log.info("upnext started", extra={"database": engine.url.render_as_string(hide_password=True)})
        try:
            yield
        finally:
            for task in svc.background:
                task.cancel()
            await asyncio.gather(*svc.background, return_exceptions=True)
            pending = writer.pending
            await writer.stop()          # commits what was accepted before the listeners closed
            engine.dispose()
            log.info("upnext stopped", extra={"drained_events": pending})

    return Starlette(routes=routes(), middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
                     lifespan=lifespan)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory backend.app:app_from_env`` (each worker process reads the env)."""
    from backend.logs import configure

    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    return create_app(settings)
