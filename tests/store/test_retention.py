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
