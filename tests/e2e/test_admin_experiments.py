"""The experiments page in a real Chromium against a real `upnext serve`: a week of an A/B/C test's traffic seeded
in the store (served lists with the arm the salted hash picks, impressions, clicks, carts, purchases), then the
list, a new draft made through the form, the report with its uplift intervals and chart, and the page on a
phone; screenshots in tests/output/screenshots/admin-experiment*.png."""
from __future__ import annotations

import random
import re

import pytest
from admin_server import log_in, start_server
from playwright.sync_api import expect
from sqlalchemy import insert, update

from backend.clock import now_ms
from backend.experiments.assignment import RunningExperiment
from backend.experiments.report import experiment_report
from backend.store.experiments import Arm, change_status, create_experiment, list_experiments
from backend.store.placements import PlacementConfig, save_placement
from backend.store.tables import Event, Experiment, ServedList
from tests.experiments.test_assignment import session_ids
from tests.support.visits import DAY_MS, item_id, seed_catalog

pytestmark = pytest.mark.slow

DAYS = 7
SESSIONS = 1800
ARMS = (Arm("control", "popular"), Arm("gru4rec", "gru4rec_next"), Arm("item-knn", "item_to_item"))
CLICK_P = {"control": 0.07, "gru4rec": 0.10, "item-knn": 0.08}      # per served list
CART_P, BUY_P = 0.3, 0.5                                              # after a click


def seed_experiment(engine, site_id: int, *, seed: int = 7) -> int:
    """A running experiment started DAYS ago with SESSIONS sessions spread over the days: 1-4 requests each,
    every list seen, clicks with the arm's CLICK_P, then sometimes a cart and a purchase (no rec: the last click
    decides). Returns its id."""
    exp = create_experiment(engine, site_id, "next", "GRU4Rec vs popular vs item-kNN", list(ARMS), salt="e2e")
    change_status(engine, exp.id, "start")
    start = now_ms() - DAYS * DAY_MS
    with engine.begin() as conn:
        conn.execute(update(Experiment).where(Experiment.id == exp.id).values(started_ms=start))
    assign = RunningExperiment(exp.id, exp.salt, exp.arms).assign
    rng = random.Random(seed)
    lists, events = [], []
    for k, session in enumerate(session_ids(SESSIONS, seed)):
        arm = assign(session).name
        t = start + int((DAYS * DAY_MS - 3_600_000) * (k + rng.random()) / SESSIONS)
        for j in range(rng.randint(1, 4)):
            rec, shown = f"r_e2e_{k}_{j}", [item_id(rng.randrange(40)) for _ in range(4)]
            lists.append({"rec": rec, "site_id": site_id, "session": session, "placement": "next",
                          "algorithm": exp.arms[[a.name for a in exp.arms].index(arm)].algorithm, "arm": arm,
                          "experiment_id": exp.id, "fallback": None, "items": shown, "served_ms": t})
            t += rng.randrange(1_000, 5_000)
            events.append(_event(site_id, session, "rec_impression", t, rec=rec, items=shown))
            if rng.random() < CLICK_P[arm]:
                item = rng.choice(shown)
                t += rng.randrange(2_000, 20_000)
                events.append(_event(site_id, session, "rec_click", t, item=item, rec=rec))
                if rng.random() < CART_P:
                    events.append(_event(site_id, session, "cart", t + 30_000, item=item))
                    if rng.random() < BUY_P:
                        events.append(_event(site_id, session, "purchase", t + 90_000, item=item,
                                             value=round(rng.uniform(10, 120), 2)))
            t += rng.randrange(10_000, 60_000)
    with engine.begin() as conn:
        conn.execute(insert(ServedList), lists)
        conn.execute(insert(Event), events)
    return exp.id


def _event(site_id, session, type_, ms, *, item=None, rec=None, items=None, value=None) -> dict:
    return {"site_id": site_id, "session": session, "type": type_, "item": item, "rec": rec, "items": items,
            "value": value, "currency": "EUR" if value is not None else None, "client_ms": ms, "received_ms": ms}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin-experiments-e2e")
    server, engine, keys = start_server(root, visits=False)
    try:
        seed_catalog(engine, keys.site_id)
        save_placement(engine, keys.site_id, PlacementConfig("next", algorithm="item_to_item", n=4))
        earlier = create_experiment(engine, keys.site_id, "next", "Holdout check (March)",
                                    [Arm("control", "item_to_item"), Arm("no-widget", "holdout")])
        change_status(engine, earlier.id, "start")
        change_status(engine, earlier.id, "stop")
        exp_id = seed_experiment(engine, keys.site_id)
        yield server, engine, keys, exp_id
    finally:
        server.terminate()
        engine.dispose()


def test_the_list_and_a_new_draft_through_the_form(shop, page, screenshot):
    server, engine, keys, _ = shop
    log_in(page, server.url)
    page.get_by_role("link", name="Experiments").click()
    expect(page.get_by_role("heading", name=re.compile("^Experiments"))).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Longer lists on the home page")
    page.get_by_label("Placement").fill("home")
    page.get_by_label("Arm 2 algorithm").select_option("gru4rec_next")
    page.get_by_label("Arm 2 share").fill("3")
    page.get_by_role("button", name="Create (as a draft)").click()
    expect(page.get_by_text("Experiment created as a draft")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^Longer lists on the home page"))).to_be_visible()
    [draft] = [e for e in list_experiments(engine, keys.site_id) if e.placement == "home"]
    assert (draft.status, [a.share for a in draft.arms]) == ("draft", [1, 3, 1])

    page.get_by_role("link", name="Experiments", exact=True).click()
    rows = page.locator("table:not(.arms-form) tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="GRU4Rec vs popular vs item-kNN")).to_contain_text("running")
    expect(rows.filter(has_text="Holdout check (March)")).to_contain_text("stopped")
    expect(rows.filter(has_text="Longer lists on the home page")).to_contain_text("draft")
    screenshot(page.locator("body"), "admin-experiments")


def test_the_report_with_uplift_intervals_and_chart(shop, page, browser, screenshot):
    server, engine, keys, exp_id = shop
    report = experiment_report(engine, exp_id)
    arms = {a["name"]: a for a in report["arms"]}
    log_in(page, server.url)
    page.goto(server.url + f"/admin/sites/{keys.site_id}/experiments/{exp_id}")
    expect(page.get_by_role("heading", name=re.compile("^GRU4Rec vs popular vs item-kNN"))).to_be_visible()
    for name, arm in arms.items():
        expect(page.locator("section").filter(has_text="Arms").locator("tr").filter(has_text=name)) \
            .to_contain_text(f"{arm['sessions']:,}")
    clicks = page.locator("table.kpis tr").filter(has_text="Clicks per 1,000 requests")
    gru = arms["gru4rec"]["kpis"]["clicks"]
    expect(clicks).to_contain_text(f"{gru['uplift'] * 100:+.1f}%")
    expect(clicks).to_contain_text(f"[{gru['uplift_low'] * 100:+.1f}, {gru['uplift_high'] * 100:+.1f}]")
    assert gru["uplift_low"] < gru["uplift"] < gru["uplift_high"]
    chart = page.locator("svg.uplift")
    expect(chart.locator("polyline")).to_have_count(2)                 # one line per arm beside the control
    expect(chart.locator("polygon")).to_have_count(2)                  # with its 95% band
    expect(page.locator(".legend")).to_contain_text("gru4rec")
    screenshot(page.locator("body"), "admin-experiment")

    page.get_by_role("link", name="Revenue from recommendations per 1,000 requests").click()
    expect(page.get_by_role("heading", name=re.compile("Cumulative uplift by day: Revenue from"))).to_be_visible()
    expect(page.locator("svg.uplift polyline")).to_have_count(2)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        log_in(small, server.url)
        small.goto(server.url + f"/admin/sites/{keys.site_id}/experiments/{exp_id}")
        expect(small.locator("svg.uplift")).to_be_visible()
        overflow = small.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        screenshot(small.locator("body"), "admin-experiment-phone")
    finally:
        phone.close()
