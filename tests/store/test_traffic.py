import pytest
from sqlalchemy import insert

from backend.store import traffic as overview
from backend.store.db import make_engine, migrate
from backend.store.partitions import DAY_MS, EVENTS, SERVED_LISTS, ensure_partitions, partition_name
from backend.store.sites import create_site
from backend.store.tables import Event, ServedList
from tests.support.plans import describe, explain, fill, holding_rows, recorded

NOW = 1_800_000_000_000 + 30_000          # half a minute into a minute
MIN = 60_000
VOLUME_NOW = 1_800_000_000_000          # 2027-01-15 08:00 UTC


def _event(site_id, session, received):
    return {"site_id": site_id, "session": session, "type": "view", "item": "a", "received_ms": received}


def test_events_per_minute_counts_whole_minutes_of_one_site(engine, site):
    from backend.store.sites import create_site

    other = create_site(engine, "other", [])
    start = NOW - NOW % MIN
    rows = [_event(site.site_id, "s1", start - 1), _event(site.site_id, "s1", start - 2),      # last full minute
            _event(site.site_id, "s2", start - 3 * MIN + 5),                                      # 3 minutes ago
            _event(site.site_id, "s3", start + 10),                                                # current minute
            _event(other.site_id, "s9", start - 1)]
    with engine.begin() as conn:
        conn.execute(insert(Event), rows)
    counts = overview.events_per_minute(engine, site.site_id, 5, now=NOW)
    assert counts == [0, 0, 1, 0, 2]
    assert overview.active_sessions(engine, site.site_id, now=NOW) == 3
    assert overview.active_sessions(engine, site.site_id, now=NOW + 31 * MIN) == 0


def test_fallback_shares_group_answers_by_placement_and_reason(engine, site):
    def served(rec, placement, fallback, t=NOW - 31_000):   # in the last whole minute
        return {"rec": rec, "site_id": site.site_id, "session": None, "placement": placement,
                "algorithm": "gru4rec_next", "arm": None, "fallback": fallback, "items": [], "served_ms": t}

    with engine.begin() as conn:
        conn.execute(insert(ServedList), [
            served("r1", "next", None), served("r2", "next", None), served("r3", "next", "cold_session:popular"),
            served("r4", "next", "cold_session:item_to_item+popular"), served("r5", "similar", "no_model:catalogue"),
            served("r6", "similar", None, t=NOW - 2 * 3600 * 1000)])
    shares = {p.placement: p for p in overview.fallback_shares(engine, site.site_id, since_ms=NOW - 3600 * 1000)}
    assert shares["next"].requests == 4 and shares["next"].by_reason == {"none": 2, "cold_session": 2}
    assert shares["next"].fallback_share == 0.5
    assert shares["similar"].requests == 1 and shares["similar"].fallback_share == 1.0
    assert overview.requests_per_minute(engine, site.site_id, 2, now=NOW) == [0, 5]


@pytest.fixture(scope="module")
def at_volume(postgres_server):
    """200k events and 60k served lists over 10 days of one site, on PostgreSQL (partitioned by day)."""
    url = postgres_server.create_database("upnext_overview_plans")
    migrate(url)
    engine = make_engine(url)
    site = create_site(engine, "shop", []).site_id
    ensure_partitions(engine, now=VOLUME_NOW - 10 * DAY_MS, ahead_days=13)
    fill(engine, site, start_ms=VOLUME_NOW - 10 * DAY_MS, end_ms=VOLUME_NOW, events=200_000, served=60_000)
    yield engine, site
    engine.dispose()


@pytest.mark.postgres
def test_overview_queries_read_only_the_window_s_day_through_an_index(at_volume):
    """Issue 16, part 4: each query of the admin overview (events and requests per minute over the last hour,
    active sessions, fallback shares) reads only the day partition its window falls in, through an index; a
    sequential scan only ever meets an empty partition (the coming days', the default)."""
    engine, site = at_volume
    with recorded(engine) as sent:
        overview.events_per_minute(engine, site, 60, now=VOLUME_NOW)
        overview.requests_per_minute(engine, site, 60, now=VOLUME_NOW)
        overview.active_sessions(engine, site, now=VOLUME_NOW)
        overview.fallback_shares(engine, site, since_ms=VOLUME_NOW - 60 * MIN)
    full = holding_rows(engine)
    today = VOLUME_NOW // DAY_MS
    assert len(sent) == 4 and len(full) >= 20                     # ten days of each table hold rows
    for statement, parameters in sent:
        scans = explain(engine, statement, parameters)
        read = [s for s in scans if s.relation in full]
        table = "events" if "FROM events" in statement else "served_lists"
        assert {s.relation for s in read} == {partition_name(today, EVENTS if table == "events" else SERVED_LISTS)}, \
            describe(scans)
        assert all(s.how != "Seq Scan" and s.index for s in read), describe(scans)
