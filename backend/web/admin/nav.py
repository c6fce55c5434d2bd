"""The admin navigation: the pages of the current site, then the pages of the whole server.

To add a page, add a NavItem here and its routes in backend/web/admin/__init__.py; the layout (base.html)
renders whatever this list holds.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    key: str          # the ``active`` name a view passes to the layout
    label: str
    path: str         # per-site pages: relative to /admin/sites/{id}/ ; server pages: absolute


SITE_PAGES: list[NavItem] = [
    NavItem("overview", "Overview", ""),
    NavItem("install", "Install check", "install"),
    NavItem("placements", "Placements", "placements"),
    NavItem("catalog", "Catalogue", "catalog"),
    NavItem("models", "Models", "models"),
    NavItem("experiments", "Experiments", "experiments"),
    NavItem("simulator", "Simulator", "simulator"),
]

SERVER_PAGES: list[NavItem] = [
    NavItem("sites", "Sites and keys", "/admin/sites"),
    NavItem("settings", "Settings", "/admin/settings"),
]
