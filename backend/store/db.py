"""Engine set-up for SQLite (WAL, busy timeout, full fsync on commit) and PostgreSQL, and migrations.

Every engine has timeouts: a connection (PostgreSQL connect, the pool) and a statement (PostgreSQL
``statement_timeout``, SQLite's wait for a lock) give up after a bounded time and raise ``DatabaseError``."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from backend.clock import now_ms
from backend.settings import Settings, resource_dir
from backend.store.tables import AppSetting

log = logging.getLogger(__name__)

MIGRATIONS_DIR = resource_dir("migrations")
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_STATEMENT_TIMEOUT_S = 60.0
HEARTBEAT = "heartbeat"        # the app_settings row the health check writes (not a setting: never loaded as one)

# What the database layer raises when the database cannot answer (unreachable, timed out, locked, full, read-only):
# the web layer turns it into a 503 without importing SQLAlchemy.
DatabaseError = SQLAlchemyError


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (the driver Upnext ships with)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def hide_password(url: str) -> str:
    """``url`` with its password shown as ``***`` (for pages and logs); an empty string stays empty."""
    return make_url(url).render_as_string(hide_password=True) if url else url


def make_engine(url: str, *, pool_size: int = 8, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout, foreign keys and full durability.

    ``connect_timeout_s`` bounds a PostgreSQL connect and the wait for a pooled connection;
    ``statement_timeout_s`` bounds a PostgreSQL statement (server side) and SQLite's wait for a lock."""
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        busy_ms = int(statement_timeout_s * 1000)
        engine = create_engine(url, connect_args={"timeout": statement_timeout_s, "check_same_thread": False},
                               pool_timeout=connect_timeout_s)
        event.listen(engine, "connect", lambda dbapi_conn, _record: _sqlite_pragmas(dbapi_conn, busy_ms))
        return engine
    connect_args = {}
    if u.get_backend_name() == "postgresql":
        # libpq counts whole seconds (at least 2); the statement timeout is enforced by the server
        connect_args = {"connect_timeout": max(2, round(connect_timeout_s)),
                        "options": f"-c statement_timeout={int(statement_timeout_s * 1000)}"}
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         pool_timeout=connect_timeout_s, connect_args=connect_args)


def _sqlite_pragmas(dbapi_conn, busy_ms: int) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")          # readers never block the writer
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    cur.execute("PRAGMA synchronous=FULL")          # a committed batch survives power loss, not just a crash
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def ping(engine: Engine) -> None:
    """One round trip to the database (``SELECT 1``); raises what the driver raises when it cannot be reached."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def write_heartbeat(engine: Engine) -> None:
    """Commit one tiny write (the ``heartbeat`` row of app_settings): raises when the database cannot be reached
    or cannot write (disk full, read-only, locked past the engine's timeout). A read alone would pass then."""
    values = {"name": HEARTBEAT, "value": {"ms": now_ms()}, "updated_ms": now_ms()}
    with engine.begin() as conn:
        if conn.dialect.name in ("postgresql", "sqlite"):
            ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(AppSetting)
            conn.execute(ins.values(values).on_conflict_do_update(
                index_elements=["name"], set_={"value": values["value"], "updated_ms": values["updated_ms"]}))
        elif not conn.execute(update(AppSetting).where(AppSetting.name == HEARTBEAT)
                              .values(value=values["value"], updated_ms=values["updated_ms"])).rowcount:
            conn.execute(AppSetting.__table__.insert().values(values))


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
    """The engine of background work and commands (``UPNEXT_DB_STATEMENT_TIMEOUT_S``)."""
    return make_engine(settings.sqlalchemy_url, connect_timeout_s=settings.db_connect_timeout_s,
                       statement_timeout_s=settings.db_statement_timeout_s)


def request_engine_from_settings(settings: Settings) -> Engine:
    """The engine of the writes requests wait for (events) and of the health check: a statement gives up after
    ``UPNEXT_DB_REQUEST_TIMEOUT_S`` (a locked SQLite file, a slow PostgreSQL), so the client gets a 503 soon."""
    return make_engine(settings.sqlalchemy_url, pool_size=2, connect_timeout_s=min(
        settings.db_connect_timeout_s, max(1.0, settings.db_request_timeout_s)),
        statement_timeout_s=settings.db_request_timeout_s)
