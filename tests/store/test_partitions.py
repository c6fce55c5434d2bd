"""Events and served lists partitioned by day on PostgreSQL (issue 16, part 4): the migrations convert a database
with rows, the server creates the coming days' partitions, retention drops whole days without stopping
ingestion."""
import threading

import pytest
from sqlalchemy import text

from alembic import command

from backend.store.db import alembic_config, make_engine, migrate
from backend.store.partitions import (DAY_MS, EVENTS, SERVED_LISTS, day_partitions, ensure_partitions,
                                      partition_name, partitioned)
from backend.store.retention import purge_events, purge_served_lists
from backend.store.sites import create_site

NOW = 1_800_000_000_000          # 2027-01-15 08:00 UTC
TODAY = NOW // DAY_MS


def add_events(engine, site_id, times):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events (site_id, session, type, item, received_ms) "
                          "VALUES (:s, 'sessionsessionsession01', 'view', 'a', :t)"),
                     [{"s": site_id, "t": t} for t in times])


def add_served(engine, site_id, times, first=0):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO served_lists (rec, site_id, session, placement, algorithm, items, served_ms) "
                          "VALUES (:rec, :s, 'sessionsessionsession01', 'home', 'popular', '[\"a\"]', :t)"),
                     [{"rec": f"r{first + k:08d}", "s": site_id, "t": t} for k, t in enumerate(times)])


def count(engine, where="true", table="events"):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar()


@pytest.fixture
def pg(postgres_server):
    url = postgres_server.create_database("upnext_partitions")
    migrate(url)
    engine = make_engine(url)
    yield engine, url
    engine.dispose()


def test_sqlite_keeps_one_table_and_nothing_happens(sqlite_url):
    engine = make_engine(sqlite_url)
    assert not partitioned(engine) and ensure_partitions(engine) == []
    engine.dispose()


@pytest.mark.postgres
def test_the_migration_converts_a_database_with_events_keeping_every_row_and_id(postgres_server):
    url = postgres_server.create_database("upnext_partition_migration")
    migrate(url, "0009")
    engine = make_engine(url)
    site = create_site(engine, "shop", []).site_id
    times = [NOW - d * DAY_MS + k for d in range(6) for k in range(5)]
    add_events(engine, site, times)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT id, received_ms FROM events ORDER BY id")).all()
    migrate(url)
    assert partitioned(engine)
    with engine.connect() as conn:
        after = conn.execute(text("SELECT id, received_ms FROM events ORDER BY id")).all()
        in_default = conn.execute(text("SELECT count(*) FROM events_default")).scalar()
    assert after == before and in_default == 0
    days = day_partitions(engine)
    assert all(TODAY - d in days for d in range(6))                         # one partition per day of data
    add_events(engine, site, [NOW, NOW + 400 * DAY_MS])                      # next id; far future: the default
    with engine.connect() as conn:
        assert conn.execute(text("SELECT max(id) FROM events")).scalar() == before[-1].id + 2
        assert conn.execute(text("SELECT count(*) FROM events_default")).scalar() == 1
    engine.dispose()
    command.downgrade(alembic_config(url), "0009")                           # and back
    assert not partitioned(engine) and count(engine) == len(times) + 2
    engine.dispose()


@pytest.mark.postgres
def test_the_coming_days_partitions_are_created_once(pg):
    engine, _ = pg
    later = NOW + 30 * DAY_MS
    created = ensure_partitions(engine, now=later)
    assert created == [partition_name(later // DAY_MS + d, table) for table in (EVENTS, SERVED_LISTS)
                       for d in range(4)]
    assert ensure_partitions(engine, now=later) == []
    add_events(engine, create_site(engine, "shop", []).site_id, [later])
    add_served(engine, 1, [later])
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {partition_name(later // DAY_MS)}")).scalar() == 1
        assert conn.execute(text(f"SELECT count(*) FROM {partition_name(later // DAY_MS, SERVED_LISTS)}")
                            ).scalar() == 1


@pytest.mark.postgres
def test_retention_drops_whole_expired_days_and_deletes_the_rest(pg):
    engine, _ = pg
    site = create_site(engine, "shop", []).site_id
    ensure_partitions(engine, now=NOW - 10 * DAY_MS, ahead_days=11)
    times = [NOW - d * DAY_MS - h * 3_600_000 for d in range(10) for h in range(0, 24, 6)]
    add_events(engine, site, times)
    cutoff = NOW - 3 * DAY_MS
    expected = sum(t < cutoff for t in times)
    assert purge_events(engine, 3, now=NOW) == expected
    assert count(engine, f"received_ms < {cutoff}") == 0 and count(engine) == len(times) - expected
    assert min(day_partitions(engine)) == cutoff // DAY_MS                  # older days: their tables are gone


@pytest.mark.postgres
def test_a_day_held_by_a_reader_is_purged_row_by_row_and_ingestion_goes_on(pg):
    """Dropping a partition needs a brief exclusive lock: with a reader holding the old day, the drop gives up
    after its lock timeout instead of waiting (and inserts with it), the day's rows are deleted in chunks,
    inserts go on, and the empty partition goes in a later round."""
    engine, url = pg
    site = create_site(engine, "shop", []).site_id
    ensure_partitions(engine, now=NOW - 5 * DAY_MS, ahead_days=6)
    add_events(engine, site, [NOW - 5 * DAY_MS, NOW - 5 * DAY_MS + 1, NOW])
    old = partition_name(TODAY - 5)
    reader, writer = make_engine(url), make_engine(url)
    with reader.connect() as held:
        tx = held.begin()
        held.execute(text(f"SELECT count(*) FROM {old}"))                  # an open reader of the old day
        inserted = []
        t = threading.Thread(target=lambda: (add_events(writer, site, [NOW + 1]), inserted.append(1)))
        purged = purge_events(engine, 3, now=NOW)
        t.start()
        t.join(30)
        assert purged == 2 and inserted == [1]
        assert TODAY - 5 in day_partitions(engine)                         # still there, empty
        tx.commit()
    assert purge_events(engine, 3, now=NOW) == 0 and TODAY - 5 not in day_partitions(engine)
    assert count(engine) == 2
    reader.dispose()
    writer.dispose()


@pytest.mark.postgres
def test_the_migration_converts_a_database_with_served_lists_keeping_every_row(postgres_server):
    url = postgres_server.create_database("upnext_served_partition_migration")
    migrate(url, "0008")
    engine = make_engine(url)
    site = create_site(engine, "shop", []).site_id
    times = [NOW - d * DAY_MS + k for d in range(6) for k in range(5)]
    add_served(engine, site, times)
    columns = "rec, site_id, session, placement, algorithm, arm, experiment_id, fallback, items::text, served_ms"
    with engine.connect() as conn:
        before = conn.execute(text(f"SELECT {columns} FROM served_lists ORDER BY rec")).all()
    migrate(url, "0013")
    assert partitioned(engine, SERVED_LISTS)
    with engine.connect() as conn:
        after = conn.execute(text(f"SELECT {columns} FROM served_lists ORDER BY rec")).all()
        in_default = conn.execute(text("SELECT count(*) FROM served_lists_default")).scalar()
    assert after == before and in_default == 0
    assert all(TODAY - d in day_partitions(engine, SERVED_LISTS) for d in range(6))
    add_served(engine, site, [NOW + 400 * DAY_MS], first=len(times))           # far future: the default
    assert count(engine, table="served_lists_default") == 1
    engine.dispose()
    command.downgrade(alembic_config(url), "0008")                           # and back
    assert not partitioned(engine, SERVED_LISTS) and count(engine, table="served_lists") == len(times) + 1
    engine.dispose()


@pytest.mark.postgres
def test_retention_drops_whole_expired_days_of_served_lists_and_deletes_the_rest(pg):
    engine, _ = pg
    site = create_site(engine, "shop", []).site_id
    ensure_partitions(engine, now=NOW - 10 * DAY_MS, ahead_days=11)
    times = [NOW - d * DAY_MS - h * 3_600_000 for d in range(10) for h in range(0, 24, 6)]
    add_served(engine, site, times)
    cutoff = NOW - 3 * DAY_MS
    expected = sum(t < cutoff for t in times)
    assert purge_served_lists(engine, 3, now=NOW) == expected
    assert count(engine, f"served_ms < {cutoff}", "served_lists") == 0
    assert count(engine, table="served_lists") == len(times) - expected
    assert min(day_partitions(engine, SERVED_LISTS)) == cutoff // DAY_MS    # older days: their tables are gone
    assert min(day_partitions(engine, EVENTS)) < cutoff // DAY_MS           # the events' days are their own


@pytest.mark.postgres
def test_a_served_lists_day_held_by_a_reader_is_purged_row_by_row_and_serving_goes_on(pg):
    engine, url = pg
    site = create_site(engine, "shop", []).site_id
    ensure_partitions(engine, now=NOW - 5 * DAY_MS, ahead_days=6)
    add_served(engine, site, [NOW - 5 * DAY_MS, NOW - 5 * DAY_MS + 1, NOW])
    old = partition_name(TODAY - 5, SERVED_LISTS)
    reader, writer = make_engine(url), make_engine(url)
    with reader.connect() as held:
        tx = held.begin()
        held.execute(text(f"SELECT count(*) FROM {old}"))                  # an open reader of the old day
        inserted = []
        t = threading.Thread(target=lambda: (add_served(writer, site, [NOW + 1], first=10), inserted.append(1)))
        purged = purge_served_lists(engine, 3, now=NOW)
        t.start()
        t.join(30)
        assert purged == 2 and inserted == [1]
        assert TODAY - 5 in day_partitions(engine, SERVED_LISTS)           # still there, empty
        tx.commit()
    assert purge_served_lists(engine, 3, now=NOW) == 0 and TODAY - 5 not in day_partitions(engine, SERVED_LISTS)
    assert count(engine, table="served_lists") == 2
    reader.dispose()
    writer.dispose()
