import tracemalloc

import numpy as np
from sqlalchemy import insert, text

from backend.store import export
from backend.store.export import export_sessions
from backend.store.sites import create_site
from backend.store.tables import Event


def _add(engine, site_id, rows):
    with engine.begin() as conn:
        conn.execute(insert(Event), [{"site_id": site_id, "rec": None, "items": None, "value": None,
                                      "currency": None, **r} for r in rows])


def ev(session, item, t, received, etype="view"):
    return {"session": session, "item": item, "type": etype, "client_ms": t, "received_ms": received}


def test_export_orders_sessions_and_events_and_collapses_repeats(engine):
    site = create_site(engine, "shop", []).site_id
    other = create_site(engine, "other", []).site_id
    _add(engine, site, [
        ev("s2", "B", 5000, 2000), ev("s2", "C", 6000, 2001),
        ev("s1", "A", 1000, 1000), ev("s1", "B", 3000, 1003), ev("s1", "B", 3500, 1004, "rec_click"),
        ev("s1", "C", 2000, 1002),                          # arrives late but happened earlier
        ev("s1", "Z", 4000, 1005, "cart"),                  # not view-like: not in training data
        ev("s3", "A", 9000, 3000),                           # length 1: dropped
    ])
    _add(engine, other, [ev("s9", "X", 1, 1), ev("s9", "Y", 2, 2)])
    data = export_sessions(engine, site)
    ids = list(data.item_ids)
    sessions = [[ids[i] for i in data.session(s)] for s in range(data.n_sessions)]
    assert sessions == [["A", "C", "B"], ["B", "C"]]
    assert data.items.dtype == np.int32 and data.offsets.tolist() == [0, 3, 5]
    assert data.start_times.tolist() == [1.0, 2.0]
    assert sorted(ids) == ["A", "B", "C"]
    assert data.support().tolist() == [1, 2, 2]


def test_export_time_window_and_empty(engine):
    site = create_site(engine, "shop", []).site_id
    assert export_sessions(engine, site).n_sessions == 0
    _add(engine, site, [ev("s1", "A", 1, 100), ev("s1", "B", 2, 101), ev("s2", "A", 3, 500), ev("s2", "C", 4, 501)])
    assert export_sessions(engine, site, since_ms=400).n_sessions == 1
    assert export_sessions(engine, site, until_ms=400).n_sessions == 1


def test_export_of_many_random_sessions_matches_a_python_model(engine):
    site = create_site(engine, "shop", []).site_id
    rng = np.random.default_rng(0)
    rows, expected = [], {}
    for s in range(300):
        n = int(rng.integers(1, 8))
        items = [f"I{int(i)}" for i in rng.integers(0, 40, n)]
        times = sorted(int(t) for t in rng.integers(0, 10_000, n))
        start = 1_000_000 + s * 10
        for k, (it, t) in enumerate(zip(items, times)):
            rows.append(ev(f"sess{s:04d}", it, start + t, start + k))
        collapsed = [it for k, it in enumerate(items) if k == 0 or it != items[k - 1]]
        if len(collapsed) >= 2:
            expected[f"sess{s:04d}"] = collapsed
    rng.shuffle(rows)
    _add(engine, site, rows)
    data = export_sessions(engine, site)
    got = [[data.item_ids[i] for i in data.session(s)] for s in range(data.n_sessions)]
    assert got == [expected[k] for k in sorted(expected)]


def _visit(session, n, start, step_ms, *, received_step_ms=None, items=40):
    """n views of distinct items, one every ``step_ms`` (client time); received ``received_step_ms`` apart
    (default: as they happened; 0: all in one batch)."""
    rstep = step_ms if received_step_ms is None else received_step_ms
    return [ev(session, f"I{k % items}", start + k * step_ms, start + k * rstep) for k in range(n)]


def test_export_leaves_out_sessions_that_look_machine_made(engine):
    site = create_site(engine, "shop", []).site_id
    _add(engine, site, [
        *_visit("human-browsing", 12, 1_000_000, 20_000),                   # a page every 20 s
        *_visit("human-offline", 12, 2_000_000, 15_000, received_step_ms=0),  # queued, delivered in one batch
        *_visit("human-click", 2, 3_000_000, 300),                         # a rec_click and its page view
        *_visit("bot-fast", 30, 4_000_000, 100),                           # 10 events a second
        *_visit("bot-no-ts", 12, 5_000_000, 0),                            # a burst, no pacing at all
        *_visit("bot-long", 600, 6_000_000, 5_000, items=600),             # paced, but 600 pages in 50 minutes
    ])
    _add(engine, site, [{**e, "client_ms": None} for e in _visit("bot-curl", 20, 9_000_000, 10)])

    def kept(**limits):
        data = export_sessions(engine, site, **limits)
        return sorted(len(data.session(s)) for s in range(data.n_sessions))

    assert kept() == [2, 12, 12]                                          # the three people
    assert kept(max_session_events=None, max_events_per_second=None) == [2, 12, 12, 12, 20, 30, 600]
    assert kept(max_session_events=1000) == [2, 12, 12, 600]              # only the rate
    assert kept(max_events_per_second=None) == [2, 12, 12, 12, 20, 30]   # only the length
    assert kept(max_events_per_second=0.01) == [2]                        # 12 events in 4 min is too fast then


def test_machine_made_rule_edges():
    from backend.store.export import RATE_MIN_EVENTS, machine_made

    n = np.array([RATE_MIN_EVENTS - 1, RATE_MIN_EVENTS, RATE_MIN_EVENTS, 501, 500])
    first = np.zeros(5, np.int64)
    last = np.array([0, (RATE_MIN_EVENTS - 1) * 1000, (RATE_MIN_EVENTS - 1) * 1000 - 1, 10**9, 10**9])
    assert machine_made(n, first, last, 500, 1.0).tolist() == [False, False, True, True, False]
    assert machine_made(n, first, last, None, None).tolist() == [False] * 5


def _generate(engine, site_id, n_events, items=1000):
    """n_events views in the database's own loop: sessions of 8 consecutive events over ``items`` items."""
    with engine.begin() as conn:
        conn.execute(text(
            "WITH RECURSIVE g(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM g WHERE k < :n - 1) "
            "INSERT INTO events (site_id, session, type, item, client_ms, received_ms) "
            "SELECT :site, 's' || (k / 8), 'view', 'I' || ((k * 7) % :items), 1000000 + k * 1000, "
            "1000000 + k * 1000 FROM g"), {"n": n_events, "site": site_id, "items": items})


def _peak_export(engine, site_id):
    tracemalloc.start()
    try:
        data = export_sessions(engine, site_id)
        return tracemalloc.get_traced_memory()[1], data
    finally:
        tracemalloc.stop()


def test_export_memory_beyond_its_result_does_not_grow_with_the_events(engine, monkeypatch):
    # The result (4 bytes an event, 16 a session) grows with the events; what the export needs besides it must
    # not: it used to hold every event's index, time and id as int64 and sort them all (~15 times the result).
    monkeypatch.setattr(export, "CHUNK_SESSIONS", 500)
    small, large = create_site(engine, "small", []).site_id, create_site(engine, "large", []).site_id
    _generate(engine, small, 40_000)
    _generate(engine, large, 400_000)
    peak_small, data_small = _peak_export(engine, small)
    peak_large, data_large = _peak_export(engine, large)
    assert (data_small.n_events, data_large.n_events) == (40_000, 400_000)
    assert data_large.n_sessions == 50_000 and data_large.n_items == 1000
    result = data_large.items.nbytes + data_large.offsets.nbytes + data_large.start_times.nbytes
    assert peak_large <= 3 * result + 2 * peak_small, (peak_small, peak_large, result)
