"""``upnext placement list|set|delete``: placements as code. ``list`` prints the site's placements as JSON, the
form ``set`` reads back, so a site can keep them in version control; ``set`` is all or nothing (every problem of
every placement listed, nothing stored). Running servers pick up a change within about two seconds."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.commands.helpers import resolve_site
from backend.errors import UpnextError
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.placements import PlacementError, config_from_json, delete_placement, list_placements, \
    save_placement


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("placement", help="placements as code: list (as JSON), set from a JSON file, delete")
    actions = cmd.add_subparsers(dest="placement_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="print the site's placements as JSON ({\"placements\": [...]})")
    p.add_argument("--site", help="site name (optional when there is only one site)")
    p.set_defaults(run=list_all)
    p = actions.add_parser("set", help="create or replace placements from a JSON file (- for stdin)",
                           description="FILE holds one placement ({\"name\": ..., \"algorithm\": ..., \"rules\": "
                                       "[...]}), a list of them, or what `upnext placement list` prints. Each "
                                       "placement is replaced whole: fields left out take their defaults.")
    p.add_argument("file")
    p.add_argument("--site")
    p.set_defaults(run=set_from_file)
    p = actions.add_parser("delete", help="delete a placement (pages naming it get the defaults)")
    p.add_argument("name")
    p.add_argument("--site")
    p.set_defaults(run=delete)


def list_all(args, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    try:
        configs = list_placements(engine, resolve_site(engine, args.site)["id"])
    finally:
        engine.dispose()
    print(json.dumps({"placements": [c.as_json() for c in configs]}, indent=2))
    return 0


def _entries(data) -> list:
    if isinstance(data, dict) and "placements" in data:
        data = data["placements"]
    return data if isinstance(data, list) else [data]


def parse_placements(text: str) -> list:
    """The placements of a file's text, every one checked; UpnextError lists every problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UpnextError(f"not JSON: {exc}") from None
    configs, problems = [], []
    for k, entry in enumerate(_entries(data)):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"placement {name!r}" if isinstance(name, str) else f"placement #{k + 1}"
        if not isinstance(name, str):
            problems.append(f"{where}: name: required")
            continue
        try:
            configs.append(config_from_json(name, entry))
        except PlacementError as exc:
            problems += [f"{where}: {f}: {m}" if f else f"{where}: {m}" for f, m in exc.problems]
    names = [c.name for c in configs]
    problems += [f"placement {n!r}: named twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise UpnextError("nothing was stored:\n  " + "\n  ".join(problems))
    if not configs:
        raise UpnextError("no placements in the file")
    return configs


def set_from_file(args, settings: Settings) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    configs = parse_placements(text)
    engine = engine_from_settings(settings)
    try:
        site = resolve_site(engine, args.site)
        for cfg in configs:
            save_placement(engine, site["id"], cfg)
    finally:
        engine.dispose()
    print(f"stored {len(configs)} placement(s) of {site['name']}: {', '.join(c.name for c in configs)}")
    return 0


def delete(args, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    try:
        site = resolve_site(engine, args.site)
        if not delete_placement(engine, site["id"], args.name):
            raise UpnextError(f"no placement {args.name!r} on {site['name']}")
    finally:
        engine.dispose()
    print(f"deleted placement {args.name} of {site['name']}")
    return 0
