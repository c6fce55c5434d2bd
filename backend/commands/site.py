"""``upnext site create|list|rotate-keys|origins|require-origin``: sites, their keys and allowed origins."""
from __future__ import annotations

import argparse
import json
import sys

from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.sites import create_site, list_sites, rotate_keys, set_origins, set_require_origin


REQUIRE_HELP = ("refuse events without an Origin header (403): only pages of the allowed origins can send them, "
                "not scripts holding the publishable key; turn it on unless a server of yours posts events")


def register(sub: argparse._SubParsersAction) -> None:
    site = sub.add_parser("site", help="create and list sites (keys, allowed origins)")
    site_sub = site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    p = site_sub.add_parser("create", help="create a site and print its keys as JSON")
    p.add_argument("name")
    p.add_argument("--origin", action="append", default=[], metavar="URL",
                   help="an origin allowed to send events, like https://shop.example (repeatable)")
    p.add_argument("--require-origin", action="store_true", help=REQUIRE_HELP)
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
    p = site_sub.add_parser("require-origin", help="refuse (on) or accept (off) events without an Origin header",
                            description=REQUIRE_HELP)
    p.add_argument("name")
    p.add_argument("state", choices=("on", "off"))
    p.set_defaults(run=site_require_origin)


def site_create(args, settings: Settings) -> int:
    keys = create_site(engine_from_settings(settings), args.name, args.origin, require_origin=args.require_origin)
    print(json.dumps(keys.as_json(), indent=2))
    print("Keep the secret key safe: it is shown only now (rotate with `upnext site rotate-keys`).",
          file=sys.stderr)
    return 0


def site_list(args, settings: Settings) -> int:
    sites = list_sites(engine_from_settings(settings))
    if args.json:
        print(json.dumps(sites, indent=2))
        return 0
    if not sites:
        print("no sites yet: `upnext site create NAME --origin https://shop.example`")
    for s in sites:
        print(f"{s['id']:>4}  {s['name']:<24} {s['publishable_key']}  {' '.join(s['allowed_origins']) or '-'}"
              f"{'  (Origin required)' if s['require_origin'] else ''}")
    return 0


def site_rotate(args, settings: Settings) -> int:
    print(json.dumps(rotate_keys(engine_from_settings(settings), args.name).as_json(), indent=2))
    return 0


def site_origins(args, settings: Settings) -> int:
    origins = set_origins(engine_from_settings(settings), args.name, args.origins)
    print(json.dumps({"site": args.name, "allowed_origins": list(origins)}))
    return 0


def site_require_origin(args, settings: Settings) -> int:
    required = set_require_origin(engine_from_settings(settings), args.name, args.state == "on")
    print(json.dumps({"site": args.name, "require_origin": required}))
    return 0
