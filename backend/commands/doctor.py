"""``upnext doctor [--site NAME] [--json]``: the server's own checks (database reachable, migrations at head, a
server running with a sane clock, live models loadable, disk space) and, with ``--site``, the site's install
check (backend/install_check.py, the admin's page). One line each, green, amber or red with what to do.

Exit status: 0 when nothing is red (amber lines are worth a look, not a failure), 1 when something is red, so
scripts and monitoring can call it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from backend.clock import now_ms
from backend.install_check import AMBER, GREEN, RED, Check, install_check
from backend.serving.bundle import check_servable, verify_bundle
from backend.settings import Settings
from backend.store.db import current_revision, engine_from_settings, head_revision, hide_password, ping
from backend.store.install import server_heartbeat_ms
from backend.store.sites import list_sites
from backend.store.trained_models import live_models

DISK_RED_BYTES, DISK_AMBER_BYTES = 1 << 30, 5 << 30
HEARTBEAT_STALE_MS = 60_000          # servers write theirs every second
CLOCK_SKEW_MS = 5_000
MARK = {GREEN: "ok  ", AMBER: "WARN", RED: "FAIL"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the server (database, migrations, models, disk, clock) and a site's "
                                      "install; exit status 1 when something is red")
    p.add_argument("--site", help="also run this site's install check (as on the admin's Install check page)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(run=doctor)


def server_checks(settings: Settings, engine) -> tuple[list[Check], bool]:
    """(the checks, whether the database can be used for the rest)."""
    url = hide_password(settings.sqlalchemy_url)
    try:
        ping(engine)
    except Exception as exc:
        return [Check("database", "Database reachable", RED, f"{url}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}",
                      "start the database or fix UPNEXT_DATABASE_URL")], False
    checks = [Check("database", "Database reachable", GREEN, url)]
    rev, head = current_revision(settings.sqlalchemy_url), head_revision()
    if rev != head:
        checks.append(Check("migrations", "Migrations at head", RED, f"at {rev or 'none (empty)'}, code expects {head}",
                            "run `upnext migrate`"))
        return checks, False
    checks.append(Check("migrations", "Migrations at head", GREEN, f"at {head}"))
    checks.append(_clock(engine))
    checks.append(_models(engine))
    checks.append(_disk(settings.data_dir))
    return checks, True


def _clock(engine) -> Check:
    beat, now = server_heartbeat_ms(engine), now_ms()
    title = "A server runs, clocks agree"
    if beat is None:
        return Check("clock", title, AMBER, "no server has run on this database yet", "start `upnext serve`")
    if beat - now > CLOCK_SKEW_MS:
        return Check("clock", title, RED, f"a server's clock is {(beat - now) / 1000:.0f} s ahead of this machine's",
                     "synchronise the clocks (NTP): event times and the held-out day depend on them")
    if now - beat > HEARTBEAT_STALE_MS:
        return Check("clock", title, AMBER, f"no server heartbeat for {(now - beat) // 1000} s",
                     "is `upnext serve` running (or its clock behind this machine's)?")
    return Check("clock", title, GREEN, f"a server's heartbeat {(now - beat) / 1000:.1f} s ago")


def _models(engine) -> Check:
    live = live_models(engine)
    bad = []
    for site_id, model in sorted(live.items()):
        try:
            verify_bundle(model.path)
            check_servable(model.path)
        except Exception as exc:
            bad.append(f"site {site_id}, model {model.id} ({model.path}): {str(exc)[:200]}")
    if bad:
        return Check("models", "Live models loadable", RED, f"{len(bad)} of {len(live)} cannot be served",
                     "publish the model again or roll back (upnext model rollback --site NAME)", bad)
    return Check("models", "Live models loadable", GREEN, f"{len(live)} live model(s) load and answer")


def _disk(data_dir: Path) -> Check:
    path = data_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path.resolve())
    free, share = usage.free, usage.free / max(1, usage.total)
    summary = f"{free / (1 << 30):.1f} GiB free ({share:.0%}) at {data_dir}"
    if free < DISK_RED_BYTES or share < 0.02:
        return Check("disk", "Disk space", RED, summary, "free space: the database and models stop being written")
    if free < DISK_AMBER_BYTES or share < 0.10:
        return Check("disk", "Disk space", AMBER, summary, "free some space soon (models, old run logs, events)")
    return Check("disk", "Disk space", GREEN, summary)


def doctor(args, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    try:
        checks, usable = server_checks(settings, engine)
        site_status = None
        if args.site and usable:
            site = next((s for s in list_sites(engine) if s["name"] == args.site), None)
            if site is None:
                checks.append(Check("site", "Site exists", RED, f"no site named {args.site!r}",
                                    "see `upnext site list`, or create it: upnext site create NAME --origin URL"))
            else:
                result = install_check(engine, settings, site)
                checks += result.checks
                site_status = result.status
    finally:
        engine.dispose()
    worst = RED if any(c.status == RED for c in checks) else AMBER if any(c.status == AMBER for c in checks) \
        else GREEN
    if args.json:
        print(json.dumps({"status": worst, "site": args.site, "site_status": site_status,
                          "checks": [c.as_json() for c in checks]}, indent=2))
    else:
        out = sys.stdout
        for c in checks:
            print(f"[{MARK[c.status]}] {c.title}: {c.summary}", file=out)
            if c.todo and c.status != GREEN:
                print(f"       what to do: {c.todo}", file=out)
            for d in c.details[:10]:
                print(f"       - {d}", file=out)
        print(f"upnext doctor: {worst}", file=out)
    return 1 if worst == RED else 0
