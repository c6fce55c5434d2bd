from sqlalchemy import insert

from backend.store import traffic as overview
from backend.store.tables import Event, ServedList

NOW = 1_800_000_000_000 + 30_000          # half a minute into a minute
MIN = 60_000


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
