"""``upnext worker``: execute queued training runs and scheduled retraining (backend/retraining/queue_worker.py).
Run it on the training host with ``UPNEXT_TRAIN_ON=worker`` on every host, so servers only queue runs."""
from __future__ import annotations

import argparse
import signal
import threading

from backend.commands.helpers import require_migrated
from backend.logs import configure
from backend.retraining.queue_worker import Worker
from backend.settings import Settings
from backend.store.db import engine_from_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="execute queued training runs and scheduled retraining (the training host)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure(settings.log_level, settings.log_format)
    engine = engine_from_settings(settings)
    require_migrated(engine)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        Worker(engine, settings).run(stop)
    finally:
        engine.dispose()
    return 0
