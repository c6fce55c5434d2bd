"""The ``upnext`` command (also ``python -m backend``): one sub-command per task, each in backend/commands/."""
from __future__ import annotations

import argparse
import importlib
import sys

from backend.errors import UpnextError
from backend.settings import Settings

# Each module has register(subparsers): it adds its sub-commands with set_defaults(run=callable(args, settings)).
COMMAND_MODULES = tuple(f"backend.commands.{name}" for name in (
    "serve", "migrate", "site", "import_items", "purge", "show_settings", "demo", "train", "evaluate", "baseline",
    "model", "train_run", "experiment", "simulate",
))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upnext", description="Upnext: self-hosted session-based recommendations (GRU4Rec).",
        epilog="Settings come from UPNEXT_* environment variables: `upnext settings` lists them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
