"""``upnext purge``: delete events and served lists older than the retention period."""
from __future__ import annotations

import argparse

from backend.errors import UpnextError
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.retention import purge_events, purge_served_lists


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purge", help="delete events and served lists older than the retention period")
    p.add_argument("--days", type=int, help="override UPNEXT_RETENTION_DAYS")
    p.set_defaults(run=purge)


def purge(args, settings: Settings) -> int:
    days = args.days if args.days is not None else settings.retention_days
    if days < 1:
        raise UpnextError("--days must be at least 1")
    engine = engine_from_settings(settings)
    n = purge_events(engine, days)
    served = purge_served_lists(engine, days)
    print(f"deleted {n} events and {served} served lists older than {days} days")
    return 0
