"""What several commands share: a migrated database, the site a command names, session files, and the table of
ranking metrics."""
from __future__ import annotations

import argparse
import json

from backend.errors import UpnextError
from backend.gru4rec.ranking_metrics import format_table
from backend.store.db import check_current
from backend.store.sites import list_sites, site_by_name


def require_migrated(engine) -> None:
    """Refuse (UpnextError, the command's clear message) a database not at the newest migration."""
    try:
        check_current(engine)
    except RuntimeError as exc:
        raise UpnextError(str(exc)) from None


def resolve_site(engine, name: str | None) -> dict:
    """The site called ``name``; without a name, the only site (an error when there are several)."""
    if name:
        return site_by_name(engine, name)
    sites = list_sites(engine)
    if len(sites) != 1:
        raise UpnextError(f"there are {len(sites)} sites: name one with --site")
    return sites[0]


def add_first_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--first-target", type=int, default=2, metavar="N",
                   help="predict each session's items from its N-th on (default 2; retailrocket-cgenet: 3)")


def print_metrics(metrics: dict, title: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(metrics))
    else:
        print(format_table(metrics, title))
