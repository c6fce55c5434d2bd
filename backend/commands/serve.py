"""``upnext serve``: run the HTTP server (uvicorn) with one or several worker processes."""
from __future__ import annotations

import argparse
import logging
import resource

import uvicorn

from backend.commands.helpers import require_migrated
from backend.logs import configure
from backend.settings import Settings
from backend.store.db import engine_from_settings

GRACEFUL_SHUTDOWN_S = 30
FILES_BESIDES_CONNECTIONS = 256       # what a server process holds open besides connections: database, logs, pools
# uvicorn's httptools protocol with a bounded request head and timeouts for unfinished requests
PROTOCOL = "backend.web.connections:GuardedHttpToolsProtocol"
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server", description="Run the Upnext HTTP server.")
    p.add_argument("--host", help="address to bind (default: UPNEXT_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (default: UPNEXT_PORT or 8000)")
    p.add_argument("--workers", type=int, help="server processes sharing the port (default: UPNEXT_WORKERS or 1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = Settings.from_env(**{k: v for k in ("host", "port", "workers")
                                    if (v := getattr(args, k)) is not None})
    configure(settings.log_level, settings.log_format)
    engine = engine_from_settings(settings)
    try:
        require_migrated(engine)
    finally:
        engine.dispose()
    fit_open_files(settings.max_connections + FILES_BESIDES_CONNECTIONS)
    uvicorn.run("backend.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=None, access_log=False,
                # behind a proxy the client's address (the admin login throttle's key) comes from the proxy's
                # X-Forwarded-For, believed only from the addresses named in UPNEXT_TRUSTED_PROXIES
                proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=settings.trusted_proxies or None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="on",
                # hostile clients: past max_connections requests are answered 503 (below the open-file limit, so
                # new clients get an answer rather than a reset); idle, unfinished or oversized requests are closed
                http=PROTOCOL, limit_concurrency=settings.max_connections, timeout_keep_alive=settings.keep_alive_s)
    return 0


def fit_open_files(wanted: int) -> int:
    """Raise this process's soft limit on open files (inherited by the workers) to ``wanted`` when it is lower,
    up to the hard limit; returns the limit now in force, with a warning when it is still short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < wanted:
        log.warning("open-file limit %d (hard) is below UPNEXT_MAX_CONNECTIONS + %d = %d: past it, new clients are "
                    "refused by the kernel instead of answered 503; lower UPNEXT_MAX_CONNECTIONS or raise the limit",
                    new, FILES_BESIDES_CONNECTIONS, wanted)
    return new
