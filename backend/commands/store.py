"""Store commands: ``migrate``, ``site create|list|rotate-keys``, ``import-items``, ``purge``, ``settings``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.errors import UpnextError
from backend.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(run=migrate)

    site = sub.add_parser("site", help="create and list sites (keys, allowed origins)")
    site_sub = site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    p = site_sub.add_parser("create", help="create a site and print its keys as JSON")
    p.add_argument("name")
    p.add_argument("--origin", action="append", default=[], metavar="URL",
                   help="an origin allowed to send events, like https://shop.example (repeatable)")
    p.set_defaults(run=site_create)
    p = site_sub.add_parser("list", help="list sites")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=site_list)
    p = site_sub.add_parser("rotate-keys", help="replace a site's keys (the old ones stop working)")
    p.add_argument("name")
    p.set_defaults(run=site_rotate)
    p = site_sub.add_parser("origins", help="set a site's allowed origins")
    p.add_argument("name")
    p.add_argument("origins", nargs="+", metavar="URL")
    p.set_defaults(run=site_origins)

    p = sub.add_parser("import-items", help="import a catalogue from CSV or JSON lines",
                       description="Upsert items from a CSV (header: id,title,url,image,price,currency,category,"
                                   "available,attributes.<name>...) or JSON lines file. Exit status 3 when "
                                   "some rows were rejected (the report lists them).")
    p.add_argument("file", type=Path)
    p.add_argument("--site", help="site name (optional when there is only one site)")
    p.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file name")
    p.add_argument("--report", type=Path, help="write the rejected rows here as JSON (default: FILE.rejected.json)")
    p.set_defaults(run=import_items)

    p = sub.add_parser("purge", help="delete events older than the retention period")
    p.add_argument("--days", type=int, help="override UPNEXT_RETENTION_DAYS")
    p.set_defaults(run=purge)

    p = sub.add_parser("settings", help="list the UPNEXT_* settings and their current values")
    p.set_defaults(run=show_settings)


def _engine(settings: Settings):
    from backend.store.db import engine_from_settings

    return engine_from_settings(settings)


def migrate(args, settings: Settings) -> int:
    from backend.store.db import migrate as upgrade

    rev = upgrade(settings.sqlalchemy_url)
    print(f"database {settings.sqlalchemy_url.split('@')[-1]} is at revision {rev} (head)")
    return 0


def resolve_site(engine, name: str | None) -> dict:
    from backend.store.sites import list_sites, site_by_name

    if name:
        return site_by_name(engine, name)
    sites = list_sites(engine)
    if len(sites) != 1:
        raise UpnextError(f"there are {len(sites)} sites: name one with --site")
    return sites[0]


def site_create(args, settings: Settings) -> int:
    from backend.store.sites import create_site

    keys = create_site(_engine(settings), args.name, args.origin)
    print(json.dumps(keys.as_json(), indent=2))
    print("Keep the secret key safe: it is shown only now (rotate with `upnext site rotate-keys`).",
          file=sys.stderr)
    return 0


def site_list(args, settings: Settings) -> int:
    from backend.store.sites import list_sites

    sites = list_sites(_engine(settings))
    if args.json:
        print(json.dumps(sites, indent=2))
        return 0
    if not sites:
        print("no sites yet: `upnext site create NAME --origin https://shop.example`")
    for s in sites:
        print(f"{s['id']:>4}  {s['name']:<24} {s['publishable_key']}  {' '.join(s['allowed_origins']) or '-'}")
    return 0


def site_rotate(args, settings: Settings) -> int:
    from backend.store.sites import rotate_keys

    print(json.dumps(rotate_keys(_engine(settings), args.name).as_json(), indent=2))
    return 0


def site_origins(args, settings: Settings) -> int:
    from backend.store.sites import set_origins

    print(json.dumps({"site": args.name, "allowed_origins": list(set_origins(_engine(settings), args.name,
                                                                             args.origins))}))
    return 0


def import_items(args, settings: Settings) -> int:
    from tqdm import tqdm

    from backend.store.importer import import_items as run_import

    if not args.file.is_file():
        raise UpnextError(f"{args.file}: no such file")
    engine = _engine(settings)
    site = resolve_site(engine, args.site)
    size = args.file.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"import {args.file.name}", file=sys.stderr) as bar:
        report = run_import(engine, site["id"], args.file, fmt=args.format,
                            progress=lambda done: bar.update(done - bar.n))
    print(f"{report.read} rows read, {report.stored} stored, {len(report.rejected)} rejected "
          f"(site {site['name']})")
    if report.rejected:
        path = args.report or args.file.with_name(args.file.name + ".rejected.json")
        path.write_text(json.dumps(report.as_json(max_rejected=len(report.rejected)), indent=1))
        for r in report.rejected[:10]:
            why = "; ".join(f"{f}: {m}" for f, m in r.problems)
            print(f"  line {r.line} (id {r.item_id!r}): {why}")
        if len(report.rejected) > 10:
            print(f"  ... {len(report.rejected) - 10} more")
        print(f"rejected rows: {path}")
        return 3
    return 0


def purge(args, settings: Settings) -> int:
    from backend.store.retention import purge_events

    days = args.days if args.days is not None else settings.retention_days
    if days < 1:
        raise UpnextError("--days must be at least 1")
    n = purge_events(_engine(settings), days)
    print(f"deleted {n} events older than {days} days")
    return 0


def show_settings(args, settings: Settings) -> int:
    for var, value, help_text in settings.describe():
        print(f"{var:<28} {value:<28} {help_text}")
    return 0
