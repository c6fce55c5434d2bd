from sqlalchemy import func, insert, select

from backend.store import retention
from backend.store.retention import DAY_MS, purge_events
from backend.store.sites import create_site
from backend.store.tables import Event


def test_purge_deletes_only_old_events_in_chunks(engine, monkeypatch):
    site = create_site(engine, "shop", []).site_id
    now = 100 * DAY_MS
    rows = [{"site_id": site, "session": "s" * 22, "type": "view", "item": "A", "rec": None, "items": None,
             "value": None, "currency": None, "client_ms": None, "received_ms": now - age * DAY_MS}
            for age in [0, 1, 29, 31, 31, 31, 40, 365]]
    with engine.begin() as conn:
        conn.execute(insert(Event), rows)
    monkeypatch.setattr(retention, "CHUNK", 2)
    assert purge_events(engine, 30, now=now) == 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar() == 3
    assert purge_events(engine, 30, now=now) == 0


def test_purge_deletes_old_served_lists_of_every_site(engine, monkeypatch):
    """Served lists carry session ids: they are personal data under the same retention as events."""
    from backend.store.retention import purge_served_lists
    from backend.store.tables import ServedList

    sites = [create_site(engine, name, []).site_id for name in ("shop", "other")]
    now = 100 * DAY_MS
    rows = [{"rec": f"r_{site}_{age}_{k}", "site_id": site, "session": "s" * 22, "placement": "p",
             "algorithm": "popular", "arm": None, "experiment_id": None, "fallback": None, "items": ["A"],
             "served_ms": now - age * DAY_MS} for site in sites for age in [0, 29, 31, 365] for k in range(2)]
    with engine.begin() as conn:
        conn.execute(insert(ServedList), rows)
    monkeypatch.setattr(retention, "CHUNK", 3)
    assert purge_served_lists(engine, 30, now=now) == 8
    with engine.connect() as conn:
        left = conn.execute(select(ServedList.site_id, ServedList.served_ms)).all()
    assert sorted(left) == sorted((site, now - age * DAY_MS) for site in sites for age in [0, 29] for _ in range(2))
    assert purge_served_lists(engine, 30, now=now) == 0
