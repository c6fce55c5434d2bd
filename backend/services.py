"""The server's long-lived components, built at start-up and stopped at shutdown by the app's lifespan, and the
background loops they need (retention, refresh of keys, placements, experiments, catalogues and models, the
database health check). Nothing here exists at import time.

Requests never wait on the database for what can be kept in memory: keys and origins, placements, running
experiments and catalogues are loaded at start-up and refreshed by background loops here; when a refresh fails,
the last copy keeps being served and the fault is logged once, not once per round."""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from backend.experiments.directory import ExperimentDirectory
from backend.logs import FaultLog
from backend.ratelimit import RateLimiter
from backend.retraining.runtime import AdminRuntime
from backend.server_metrics import Metrics
from backend.serving.item_metadata import CatalogCache
from backend.serving.model_cache import ModelCache
from backend.serving.registry import ModelRegistry
from backend.settings import Settings
from backend.store.db import (Engine, check_current, engine_from_settings, request_engine_from_settings,
                              write_heartbeat)
from backend.store.blobs import blob_store
from backend.store.group_commit import GroupCommitWriter, events_writer, served_lists_writer
from backend.store.origins import OriginLog
from backend.store.placements import PlacementDirectory
from backend.store.partitions import ensure_partitions
from backend.store.retention import purge_events, purge_served_lists
from backend.store.sites import SiteDirectory, SiteInfo
from backend.web.http import request_faults
from backend.store.tables import VIEW_LIKE

log = logging.getLogger(__name__)

CATALOG_POLL_S = 1.0
MODEL_POLL_S = 2.0
SITES_POLL_S = 0.2        # how often the key directory looks whether a reload is due (a miss, its age)
DIRECTORY_POLL_S = 2.0    # placements and running experiments
HEALTH_POLL_S = 1.0       # the health check's heartbeat write
ORIGINS_FLUSH_S = 5.0     # origins noted by requests, written for the install check
# Threads answering recommendations: kernels release the GIL, and requests waiting together are scored in one
# pass (serving/batching.py), so more threads than cores let passes fill up under load.
REC_THREADS = 16


@dataclass
class Services:
    """Everything a request handler may use."""
    settings: Settings
    engine: Engine                       # background work, admin pages
    request_engine: Engine               # writes requests wait for, and the health check: short timeouts
    metrics: Metrics
    sites: SiteDirectory
    writer: GroupCommitWriter            # events: a 202 waits for their commit
    served: GroupCommitWriter            # served recommendation lists: recorded without waiting
    key_limiter: RateLimiter
    session_limiter: RateLimiter
    rec_limiter: RateLimiter             # recommendation requests per key
    catalog: CatalogCache
    placements: PlacementDirectory
    experiments: ExperimentDirectory     # the running experiment of each placement (arm assignment)
    models: ModelRegistry
    rec_pool: ThreadPoolExecutor         # recommendations run here: kernels release the GIL
    state_pool: ThreadPoolExecutor       # one thread: a session's view events advance its state in order
    # called after events are stored: (site, session, clean events)
    event_listeners: list[Callable] = field(default_factory=list)
    origins: OriginLog = field(default_factory=OriginLog)   # where requests came from (install check)
    background: list[asyncio.Task] = field(default_factory=list)
    admin: "AdminRuntime | None" = None  # training runs, retraining schedule, settings overrides
    model_cache: ModelCache | None = None  # this host's copies of live models, fetched from the store
    # the health check (a committed heartbeat write, in the background): monotonic time of the last success,
    # of the start of the check in progress (None: none running), and the last error (None: the last one passed)
    health_ok_at: float = float("-inf")
    health_since: float | None = None
    health_error: str | None = None

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def build(cls, settings: Settings, metrics: Metrics) -> "Services":
        engine = engine_from_settings(settings)
        check_current(engine)
        request_engine = request_engine_from_settings(settings)
        writer = events_writer(request_engine, interval_s=settings.commit_interval_ms / 1000,
                               max_batch=settings.commit_max_events, max_pending=settings.max_pending_events,
                               on_commit=metrics.on_commit, timeout_s=settings.db_request_timeout_s)
        # nobody waits for served lists: a full queue (the database slow or down) drops new ones, counted
        served = served_lists_writer(request_engine, interval_s=0.05, max_batch=5000,
                                     max_pending=settings.max_pending_served, timeout_s=settings.db_request_timeout_s)
        cache = ModelCache(settings.model_dir, blob_store(engine))
        svc = cls(settings=settings, engine=engine, model_cache=cache, request_engine=request_engine, metrics=metrics,
                  sites=SiteDirectory(engine), writer=writer, served=served,
                  key_limiter=RateLimiter(settings.rate_key_events, 2 * settings.rate_key_events),
                  session_limiter=RateLimiter(settings.rate_session_events, 4 * settings.rate_session_events),
                  rec_limiter=RateLimiter(settings.rate_key_recommendations, 2 * settings.rate_key_recommendations),
                  catalog=CatalogCache(engine), placements=PlacementDirectory(engine),
                  experiments=ExperimentDirectory(engine),
                  models=ModelRegistry(settings.state_mb << 20, item_matrix=settings.item_matrix,
                                       locate=cache.local),
                  rec_pool=ThreadPoolExecutor(REC_THREADS, thread_name_prefix="recommend"),
                  state_pool=ThreadPoolExecutor(1, thread_name_prefix="session-state"))
        svc.event_listeners.append(svc._advance_states)
        svc.catalog.on_load = svc._score_new_items
        svc.admin = AdminRuntime(svc)
        return svc

    async def start(self) -> None:
        # what requests read from memory, loaded before the first request (the database must answer at start-up)
        self.sites.reload()
        await asyncio.to_thread(self._load_directories)
        try:
            await self._check_health()
        except Exception as exc:  # the server starts; /healthz says 503 until a check passes
            log.error("database health check failed at start-up: %s", exc.__class__.__name__,
                      extra={"error": self.health_error})
        # Live models are loaded and their kernels compiled before the first request is accepted, and so are
        # their sites' catalogues and masks: the first visitors after a restart wait for nothing.
        await asyncio.to_thread(self._sync_and_warm)
        try:
            await asyncio.to_thread(ensure_partitions, self.engine)
        except Exception as exc:  # the default partitions take the rows meanwhile; retried every retention round
            log.error("partitions of events and served lists not checked at start-up", extra={"error": str(exc)[:300]})
        await self.writer.start()
        await self.served.start()
        for name, period, work in (("retention", self.settings.purge_interval_s, self._purge),
                                   ("sites-refresh", SITES_POLL_S, self._refresh_sites),
                                   ("directories-refresh", DIRECTORY_POLL_S, self._refresh_directories),
                                   ("catalog-refresh", CATALOG_POLL_S, self._refresh_catalogs),
                                   ("model-sync", MODEL_POLL_S, self._sync_models),
                                   ("health-check", HEALTH_POLL_S, self._check_health),
                                   ("origins-flush", ORIGINS_FLUSH_S, self._flush_origins)):
            self.background.append(asyncio.create_task(_every(period, work, name), name=name))
        await self.admin.start()

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.admin.stop()
        try:
            await asyncio.to_thread(self.origins.flush, self.engine)
        except Exception:  # the database gone at shutdown: these counts are only for the install check
            log.warning("origins not flushed at shutdown")
        pending = self.writer.pending
        await self.writer.stop()          # commits what was accepted before the listeners closed
        await self.served.stop()
        self.rec_pool.shutdown(wait=True)
        self.state_pool.shutdown(wait=True)
        self.engine.dispose()
        self.request_engine.dispose()
        log.info("upnext stopped", extra={"drained_events": pending})

    # ------------------------------------------------------------------ background work

    async def _purge(self) -> None:
        await asyncio.to_thread(ensure_partitions, self.engine)     # PostgreSQL: the coming days' partitions
        days = self.settings.retention_days
        n = await asyncio.to_thread(purge_events, self.engine, days)
        served = await asyncio.to_thread(purge_served_lists, self.engine, days)
        self.metrics.events_purged.inc(n)
        self.metrics.served_purged.inc(served)
        if n or served:
            log.info("retention purge", extra={"deleted": n, "served_lists_deleted": served, "days": days})

    def _load_directories(self) -> None:
        self.placements.refresh()
        self.experiments.refresh()
        self.catalog.refresh()

    async def _refresh_sites(self) -> None:
        """Keys and origins: reloaded when due (age, or a lookup that missed); never by a request."""
        await asyncio.to_thread(self.sites.refresh_if_due)

    async def _refresh_directories(self) -> None:
        await asyncio.to_thread(self.placements.refresh)
        await asyncio.to_thread(self.experiments.refresh)

    async def _check_health(self) -> None:
        """Commit a heartbeat write (a read alone passes while writes fail: disk full, read-only). /healthz
        answers from what this found, so an anonymous client never makes the server touch the database."""
        self.health_since = time.monotonic()
        try:
            await asyncio.to_thread(write_heartbeat, self.request_engine)
        except Exception as exc:
            self.health_error = f"{exc.__class__.__name__}: {exc}"[:500]
            raise
        else:
            self.health_error = None
            self.health_ok_at = time.monotonic()
            request_faults.succeeded()      # the next database fault a request sees is logged again
        finally:
            self.health_since = None

    def healthy(self) -> bool:
        """The last health check passed, none has been running for longer than the request timeout, and the last
        success is recent."""
        now, timeout = time.monotonic(), self.settings.db_request_timeout_s
        if self.health_error is not None:
            return False
        if self.health_since is not None and now - self.health_since > timeout:
            return False
        return now - self.health_ok_at <= 2 * HEALTH_POLL_S + timeout

    async def _flush_origins(self) -> None:
        await asyncio.to_thread(self.origins.flush, self.engine)

    async def _refresh_catalogs(self) -> None:
        """Notice catalogue writes made by other processes (their version bump) within about a second."""
        await asyncio.to_thread(self.catalog.refresh)

    async def _sync_models(self) -> None:
        """Hot-swap models promoted by any process (admin page, `upnext model publish`)."""
        await asyncio.to_thread(self._sync_and_warm)

    def _sync_and_warm(self) -> None:
        changed = self.models.sync(self.engine)
        for site_id in changed:
            snap = self.catalog.load(site_id)
            model = self.models.add_catalogue_items(site_id, snap.records())
            if model is not None:           # the mask a request builds on its first use of this model
                snap.mask_for((model.model_id, model.engine.n_items), model.engine.item_ids)
        if changed and self.model_cache is not None:    # cached models no longer live go (module model_cache)
            live = (self.models.get(s) for s in self.models.sites())
            self.model_cache.prune({Path(m.engine.path).name for m in live if m is not None})

    def _score_new_items(self, snap) -> None:
        """A catalogue (re)loaded in this process: its items that the site's model has no vector for get one from
        their features (a model trained with item features), so they can be recommended and clicked through."""
        model = self.models.add_catalogue_items(snap.site_id, snap.records())
        if model is None or model.engine.n_items < len(snap):     # product pages answered by content: ready now
            snap.content_index()

    def _advance_states(self, site: SiteInfo, session: str, events: list[dict]) -> None:
        """View-like events move the session's in-memory state at once (when this process holds it)."""
        model = self.models.get(site.id)
        if model is None:
            return
        items = [ev["item"] for ev in events if ev["type"] in VIEW_LIKE]
        if items and session in model.states:
            self.state_pool.submit(_advance, model, session, items)


def _advance(model, session: str, items: list[str]) -> None:
    eng, states = model.engine, model.states
    for item_id in items:
        idx = eng.index(item_id)
        held = states.get(session)
        if idx is None or held is None:
            continue
        if len(held.recent) and held.recent[-1] == idx:   # the view of a page a rec_click just opened
            continue
        states.advance(session, idx, eng.advance, eng.zero_state)


async def _every(period: float, work: Callable[[], Awaitable[None]], name: str) -> None:
    faults = FaultLog(log, f"background task {name}")
    while True:
        await asyncio.sleep(period)
        try:
            await work()
        except Exception as exc:  # a failed round is retried next period; it must never stop the server
            faults.failed(exc, task=name)     # logged once per fault period, not every round
        else:
            faults.succeeded()
