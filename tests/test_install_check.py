"""The install check's lines from what the store holds: red for a fresh site, green once the snippet works,
the refused origin and the unknown item ids named."""
from sqlalchemy import insert

from backend.clock import now_ms
from backend.install_check import install_check
from backend.settings import Settings
from backend.store.events import insert_events
from backend.store.origins import OriginLog
from backend.store.sites import list_sites
from backend.store.tables import ServedList
from tests.support.visits import seed_catalog

SETTINGS = Settings.from_env({}, first_model_sessions=100)


def statuses(engine, now=None):
    check = install_check(engine, SETTINGS, list_sites(engine)[0], now=now)
    return check, {c.key: c.status for c in check.checks}


def traffic(engine, site_id, now, items=("SKU-001", "SKU-002"), session="s" * 22, rec="r_1"):
    def row(type_, item=None, shown=None, ago=1000):
        return {"site_id": site_id, "session": session, "type": type_, "item": item, "rec": rec if type_ != "view"
                else None, "items": shown, "client_ms": now - ago, "received_ms": now - ago}
    insert_events(engine, [row("view", i) for i in items] + [row("rec_impression", shown=list(items), ago=600),
                                                             row("rec_click", items[0], ago=500)])
    with engine.begin() as conn:
        conn.execute(insert(ServedList), [{"rec": rec, "site_id": site_id, "session": session,
                                           "placement": "product-page", "algorithm": "popular", "items": list(items),
                                           "served_ms": now - 700}])


def test_a_fresh_site_is_red_with_what_to_do(engine, site):
    check, got = statuses(engine)
    assert check.status == "red"
    assert got == {"snippet": "red", "views": "red", "recs": "red", "catalogue": "red", "origins": "green",
                   "model": "green"}                     # collecting sessions is not a fault
    by_key = {c.key: c for c in check.checks}
    assert "paste the script tag" in by_key["snippet"].todo
    assert "import-items" in by_key["catalogue"].todo
    assert "0 of 100 sessions" in by_key["model"].summary


def test_a_working_install_is_green(engine, site):
    now = now_ms()
    seed_catalog(engine, site.site_id)
    traffic(engine, site.site_id, now)
    log = OriginLog()
    log.note(site.site_id, "script", "https://shop.example", now=now)
    log.flush(engine)
    check, got = statuses(engine, now)
    assert check.status == "green", check.checks
    assert "https://shop.example" in check.checks[0].details[0]
    assert check.checks[1].summary.startswith("2 in the last hour")      # the current minute counts here


def test_pages_asking_without_views_refused_origins_and_unknown_ids_are_named(engine, site):
    now = now_ms()
    seed_catalog(engine, site.site_id)
    log = OriginLog()
    log.note(site.site_id, "refused", "https://www.shop.example", now=now)
    log.flush(engine)
    with engine.begin() as conn:
        conn.execute(insert(ServedList), [{"rec": "r_9", "site_id": site.site_id, "session": None,
                                           "placement": "product-page", "algorithm": "popular", "items": [],
                                           "served_ms": now - 700}])
    check, got = statuses(engine, now)
    by_key = {c.key: c for c in check.checks}
    assert got["views"] == "red" and "data-item" in by_key["views"].todo
    assert got["origins"] == "red" and "https://www.shop.example" in by_key["origins"].summary
    assert "refused" in by_key["snippet"].todo
    traffic(engine, site.site_id, now, items=("SKU-001", "/p/1", "/p/2"), rec="r_2")
    check, got = statuses(engine, now)
    by_key = {c.key: c for c in check.checks}
    assert got["catalogue"] == "red" and "67%" in by_key["catalogue"].summary
    assert sorted(by_key["catalogue"].details) == ["unknown: /p/1", "unknown: /p/2"]
