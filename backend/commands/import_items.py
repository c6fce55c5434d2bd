"""``upnext import-items FILE``: upsert a catalogue from CSV or JSON lines, with a report of rejected rows."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from backend.commands.helpers import resolve_site
from backend.errors import UpnextError
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.importer import import_items as run_import


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-items", help="import a catalogue from CSV or JSON lines",
                       description="Upsert items from a CSV (header: id,title,url,image,price,currency,category,"
                                   "available,attributes.<name>...) or JSON lines file. Exit status 3 when "
                                   "some rows were rejected (the report lists them).")
    p.add_argument("file", type=Path)
    p.add_argument("--site", help="site name (optional when there is only one site)")
    p.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file name")
    p.add_argument("--report", type=Path, help="write the rejected rows here as JSON (default: FILE.rejected.json)")
    p.set_defaults(run=import_items)


def import_items(args, settings: Settings) -> int:
    if not args.file.is_file():
        raise UpnextError(f"{args.file}: no such file")
    engine = engine_from_settings(settings)
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
