"""Engine set-up for SQLite (WAL, busy timeout, full fsync on commit) and PostgreSQL, and migrations."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from backend.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = REPO_ROOT / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (the driver Upnext ships with)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def hide_password(url: str) -> str:
    """``url`` with its password shown as ``***`` (for pages and logs); an empty string stays empty."""
    return make_url(url).render_as_string(hide_password=True) if url else url


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout, foreign keys and full durability."""
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                  "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")          # readers never block the writer
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=FULL")          # a committed batch survives power loss, not just a crash
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def ping(engine: Engine) -> None:
    """One round trip to the database (``SELECT 1``); raises what the driver raises when it cannot be reached."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def alembic_config(url: str):
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> str:
    """Upgrade the database at ``url`` to ``revision``; returns the revision it is at afterwards."""
    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    return current_revision(url)


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads ({heads}); merge them")
    return heads[0]


def check_current(engine: Engine) -> None:
    """Refuse to start on a database that is not migrated to head, with the command that fixes it."""
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    if rev != head:
        raise RuntimeError(f"database is at revision {rev or 'none (empty)'}, code expects {head}: "
                           f"run `upnext migrate`")


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(settings.sqlalchemy_url)
