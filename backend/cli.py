"""The ``upnext`` command (also ``python -m backend``): one sub-command per task, each in backend/commands/.

Only the module of the command being run is imported (its imports reach sqlalchemy, numba or alembic, up to a
second or two for all of them together); ``upnext --help`` and an unknown command import them all, to list them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from backend.errors import UpnextError
from backend.settings import Settings

# command -> module; each module's register(subparsers) adds its command with set_defaults(run=callable(args,
# settings)). The order is the order of `upnext --help`.
COMMANDS = {
    "serve": "serve", "worker": "worker", "migrate": "migrate", "site": "site", "import-items": "import_items",
    "purge": "purge",
    "settings": "show_settings", "demo": "demo", "train": "train", "evaluate": "evaluate", "baseline": "baseline",
    "tune": "tune", "model": "model", "train-run": "train_run", "placement": "placement", "experiment": "experiment",
    "simulate": "simulate", "doctor": "doctor", "cold-start": "cold_start",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone."""
    parser = argparse.ArgumentParser(
        prog="upnext", description="Upnext: self-hosted session-based recommendations (GRU4Rec).",
        epilog="Settings come from UPNEXT_* environment variables: `upnext settings` lists them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module in COMMANDS.items():
        if only is None or command == only:
            importlib.import_module(f"backend.commands.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.run(args, settings) or 0)
    except UpnextError as exc:
        print(f"upnext: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("upnext: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
