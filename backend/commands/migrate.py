"""``upnext migrate``: create or upgrade the database schema to the newest migration."""
from __future__ import annotations

import argparse

from backend.settings import Settings
from backend.store.db import migrate as upgrade


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(run=migrate)


def migrate(args, settings: Settings) -> int:
    rev = upgrade(settings.sqlalchemy_url)
    print(f"database {settings.sqlalchemy_url.split('@')[-1]} is at revision {rev} (head)")
    return 0
