"""A real ``upnext serve`` for the admin's browser tests: a migrated SQLite store in a temporary folder, a site
with three days of visits and a catalogue, and helpers to log in and to read the store."""
from __future__ import annotations

import re
from pathlib import Path

from backend.simulation.server import ServerProcess
from backend.store.db import make_engine, migrate
from backend.store.sites import create_site
from tests.support.visits import seed_visits

PASSWORD = "a long admin password"
from tests.support.training import TINY  # noqa: F401 (the admin tests import it from here)


def start_server(root: Path, *, password: str | None = PASSWORD, visits: bool = True):
    """(server, engine, site keys): the server is started; the caller stops it and disposes the engine."""
    url = f"sqlite:///{root / 'upnext.db'}"
    migrate(url)
    engine = make_engine(url)
    keys = create_site(engine, "shop", ["https://shop.example"])
    if visits:
        seed_visits(engine, keys.site_id, sessions=300, days=3)
    env = {"UPNEXT_ADMIN_PASSWORD": password} if password else {"UPNEXT_ADMIN_PASSWORD": ""}
    server = ServerProcess(url, data_dir=root / "var", env=env, log_path=root / "server.log").start()
    return server, engine, keys


def log_in(page, base: str, password: str = PASSWORD) -> None:
    page.goto(base + "/admin/")
    page.get_by_label("Admin password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/admin/sites/\d+/$"))
