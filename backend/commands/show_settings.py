"""``upnext settings``: list the UPNEXT_* settings, their current values and what they do."""
from __future__ import annotations

import argparse

from backend.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settings", help="list the UPNEXT_* settings and their current values")
    p.set_defaults(run=show_settings)


def show_settings(args, settings: Settings) -> int:
    for var, value, help_text in settings.describe():
        print(f"{var:<28} {value:<28} {help_text}")
    return 0
