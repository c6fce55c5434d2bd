"""``upnext serve``: run the HTTP server (uvicorn) with one or several worker processes."""
from __future__ import annotations

import argparse

import uvicorn

from backend.errors import UpnextError
from backend.logs import configure
from backend.settings import Settings
from backend.store.db import check_current, engine_from_settings

GRACEFUL_SHUTDOWN_S = 30


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
        check_current(engine)
    except RuntimeError as exc:
        raise UpnextError(str(exc)) from None
    finally:
        engine.dispose()
    uvicorn.run("backend.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=None, access_log=False,
                # behind a proxy the client's address (the admin login throttle's key) comes from the proxy's
                # X-Forwarded-For, believed only from the addresses named in UPNEXT_TRUSTED_PROXIES
                proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=settings.trusted_proxies or None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="on")
    return 0
