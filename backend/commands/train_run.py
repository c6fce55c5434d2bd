"""``upnext train-run RUN_ID``: execute one queued background training run (the admin page's server starts
it; see backend/retraining/training_run.py). Not meant to be typed by hand, but harmless: a run that is not queued
is left alone."""
from __future__ import annotations

import argparse

from backend.commands.helpers import require_migrated
from backend.logs import configure
from backend.retraining.training_run import execute
from backend.settings import Settings
from backend.store.db import engine_from_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-run", help="execute a queued training run (started by the server)")
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure(settings.log_level, settings.log_format)
    engine = engine_from_settings(settings)
    try:
        require_migrated(engine)
        status = execute(engine, settings, args.run_id)
    finally:
        engine.dispose()
    print(f"run {args.run_id}: {status}")
    return 0 if status in ("succeeded", "cancelled") else 1
