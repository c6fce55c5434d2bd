"""Fixtures shared by the whole suite: databases (SQLite and a throwaway PostgreSQL), apps, data paths."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.settings import REPO_ROOT, Settings
from backend.store.db import make_engine, migrate
from backend.store.sites import create_site

SHARED_DATA = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset not available: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def postgres_server():
    from tests.support.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        print(f"\nPostgreSQL tests skipped: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_migrated(postgres_server) -> str:
    url = postgres_server.create_database("upnext_test")
    migrate(url)
    return url


def _fresh_postgres(url: str) -> str:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE events, items, sites RESTART IDENTITY CASCADE"))
        extra = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public' "
                                  "AND tablename NOT IN ('events','items','sites','alembic_version')")).scalars()
        for table in extra:
            conn.execute(text(f'TRUNCATE "{table}" RESTART IDENTITY CASCADE'))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, _sqlite_template) -> str:
    """A migrated, empty database: SQLite in a temporary file, or the test PostgreSQL server (truncated)."""
    if request.param == "sqlite":
        path = tmp_path / "upnext.db"
        shutil.copy(_sqlite_template, path)
        return f"sqlite:///{path}"
    return _fresh_postgres(request.getfixturevalue("_postgres_migrated"))


@pytest.fixture
def sqlite_url(tmp_path, _sqlite_template) -> str:
    path = tmp_path / "upnext.db"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def site(engine):
    """A site "shop" whose widget may post from https://shop.example."""
    return create_site(engine, "shop", ["https://shop.example"])


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return Settings.from_env({}, database_url=db_url, data_dir=str(tmp_path / "var"), purge_interval_s="3600")


def pytest_collection_modifyitems(config, items):
    """Real-browser tests last: the quick unit tests fail first, and the browser starts only once."""
    items.sort(key=lambda item: "/e2e/" in str(item.fspath))
