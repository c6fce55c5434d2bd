from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from backend.store.partitions import PARTITION_NAME
from backend.store.db import alembic_config, current_revision, head_revision, make_engine, migrate
from backend.store.tables import Base


def test_one_head_only():
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


def test_empty_sqlite_database_upgrades_to_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert current_revision(url) is None
    assert migrate(url) == head_revision()
    assert migrate(url) == head_revision()   # idempotent


def test_empty_postgres_database_upgrades_to_head(postgres_server):
    url = postgres_server.create_database("upnext_migrate_empty")
    assert current_revision(url) is None
    assert migrate(url) == head_revision()


def test_models_match_migrated_schema(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            # the day partitions of events and served lists (PostgreSQL, store/partitions.py) are not models
            opts = {"compare_type": True, "include_name": lambda name, kind, _: not (
                kind == "table" and PARTITION_NAME.fullmatch(name or ""))}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_sqlite_runs_in_wal_mode_with_busy_timeout(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_event_indexes_exist(db_url):
    engine = make_engine(db_url)
    names = {ix["name"] for ix in inspect(engine).get_indexes("events")}
    engine.dispose()
    assert {"ix_events_site_type_session", "ix_events_site_session", "ix_events_received"} <= names
