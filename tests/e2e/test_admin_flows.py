"""The admin page in a real Chromium against a real `upnext serve`: log in, import a catalogue, create a
placement and see its preview, train on a small set, promote (hot-swapped into the server), roll back; a
screenshot of every page in tests/output/screenshots/admin-*.png."""
from __future__ import annotations

import re

import httpx
import pytest
from admin_server import TINY, log_in, start_server
from playwright.sync_api import expect

from backend.publishing import publish_artifact
from backend.store.items import count_items
from backend.store.placements import PlacementConfig, list_placements, save_placement
from backend.store.trained_models import list_models, live_models, promote
from tests.kernels.random_model import save_random_gru4rec
from tests.support.visits import item_id

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin-e2e")
    server, engine, keys = start_server(root)
    # a model live before the tests: it knows none of the shop's items (ids item-0...), the roll-back target
    old = publish_artifact(engine, keys.site_id, save_random_gru4rec(root / "old-model", 20, [8], seed=1),
                           model_dir=root / "models")
    _eventually(lambda: "no_model" not in (recommend(server, keys, "next", [])["fallback"] or ""),
                "the server picked up the live model")
    try:
        yield server, engine, keys, old
    finally:
        server.terminate()
        engine.dispose()


def recommend(server, keys, placement: str, history: list[str]) -> dict:
    r = httpx.get(server.url + "/v1/recommendations", params={
        "key": keys.publishable_key, "placement": placement, "history": ",".join(history), "n": 4})
    assert r.status_code == 200, r.text
    return r.json()


def test_log_in_see_the_overview_and_log_out(shop, page, screenshot):
    server, engine, keys, _ = shop
    page.goto(server.url + "/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page.locator("body"), "admin-login")
    log_in(page, server.url)
    expect(page.get_by_role("heading", name="shop overview")).to_be_visible()
    expect(page.locator(".tile").filter(has_text="active sessions")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(2)
    cookies = page.context.cookies()
    assert [(c["name"], c["path"], c["httpOnly"], c["sameSite"]) for c in cookies] == \
        [("upnext_admin", "/admin", True, "Strict")]
    screenshot(page.locator("body"), "admin-overview")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    page.goto(server.url + "/admin/settings")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_import_a_catalogue_with_a_validation_report(shop, page, screenshot, tmp_path):
    server, engine, keys, _ = shop
    before = count_items(engine, keys.site_id)
    csv = tmp_path / "new-items.csv"
    csv.write_text("id,title,url,price,currency,category\n"
                   "NEW-1,Trail runner,https://shop.example/p/new-1,89.5,EUR,shoes\n"
                   "NEW-2,Rain jacket,https://shop.example/p/new-2,120,EUR,jackets\n"
                   "NEW-3,Broken price,https://shop.example/p/new-3,free,EUR,shoes\n")
    log_in(page, server.url)
    page.get_by_role("link", name="Catalogue").click()
    page.get_by_label("File").set_input_files(str(csv))
    page.get_by_role("button", name="Import").click()
    report = page.locator(".report")
    expect(report).to_contain_text("3 rows read, 2 stored, 1 refused")
    expect(report.locator("tr").filter(has_text="NEW-3")).to_contain_text("price: must be a non-negative number")
    assert count_items(engine, keys.site_id) == before + 2
    screenshot(page.locator("body"), "admin-catalog")

    page.get_by_label("Search by id or title").fill("rain jacket")
    page.get_by_role("button", name="Search").click()
    row = page.locator("table.items tr").filter(has_text="NEW-2")
    expect(row).to_have_count(1)
    row.get_by_role("button", name="NEW-2 available").click()
    expect(page.locator("table.items tr").filter(has_text="NEW-2").get_by_role("button")).to_have_text("no")


def test_create_a_placement_and_preview_it(shop, page, screenshot):
    server, engine, keys, _ = shop
    sent_events = []
    page.on("request", lambda r: sent_events.append(r.url) if "/v1/events" in r.url else None)
    log_in(page, server.url)
    page.get_by_role("link", name="Placements", exact=True).click()
    page.get_by_role("link", name="New placement").click()
    page.get_by_label("Name").fill("also-bought")
    page.get_by_label("Kind of page").select_option("product")
    page.get_by_label("Algorithm", exact=True).select_option("item_to_item")
    page.get_by_label("Items", exact=True).fill("5")
    page.get_by_label("Title").fill("Bought together")
    page.get_by_label("Only the page item's category").check()
    page.get_by_label("When the algorithm cannot fill the list").select_option("popular")
    page.get_by_role("button", name="Create placement").click()
    expect(page.get_by_text("Placement saved.")).to_be_visible()
    [cfg] = [p for p in list_placements(engine, keys.site_id) if p.name == "also-bought"]
    assert (cfg.algorithm, cfg.n, cfg.same_category, cfg.fallback) == ("item_to_item", 5, True, ("popular",))

    preview = page.frame_locator("iframe.preview")
    expect(preview.locator('[data-upnext="also-bought"] a.a')).to_have_count(5)
    expect(preview.get_by_role("region", name="Bought together")).to_be_visible()
    page.get_by_label("Title").fill("Live title")                       # the preview follows the form
    expect(preview.get_by_role("region", name="Live title")).to_be_visible()
    page.wait_for_timeout(1500)            # an impression would be sent by now (batches leave within 1 s)
    assert sent_events == []               # the preview is a visitor with Global Privacy Control: no events
    screenshot(page.locator("body"), "admin-placement-edit")
    page.get_by_role("link", name="Back to the list").click()
    expect(page.locator("table").get_by_role("link", name="also-bought")).to_be_visible()
    screenshot(page.locator("body"), "admin-placements")


def test_train_promote_and_roll_back(shop, page, screenshot):
    server, engine, keys, old = shop
    history = [item_id(3), item_id(24)]
    assert recommend(server, keys, "next", history)["fallback"].startswith("unknown_item")   # old model: no SKUs
    log_in(page, server.url)
    page.get_by_role("link", name="Models").click()
    page.get_by_label("Parameters (applied after the preset").fill(TINY)
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_text("Training run started.")).to_be_visible()
    # the page follows the run and reloads when it ends
    succeeded = page.locator("table.runs .badge.status-succeeded")
    expect(succeeded).to_have_count(1, timeout=120_000)
    new = max(m.id for m in list_models(engine, keys.site_id))
    row = page.locator(f"#model-{new}")
    expect(row).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d –\s*\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(row.locator("td.num").first).to_have_text(re.compile(r"0\.\d{4}"))
    screenshot(page.locator("body"), "admin-models")

    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Promote").click()
    expect(page.get_by_text("Model promoted")).to_be_visible()
    expect(page.locator(f"#model-{new} .badge.live")).to_be_visible()
    assert live_models(engine)[keys.site_id].id == new
    _eventually(lambda: recommend(server, keys, "next", history)["fallback"] is None, "the new model served")

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Roll back to the previous model").click()
    expect(page.get_by_text("Rolled back to the previous model.")).to_be_visible()
    expect(page.locator(f"#model-{old} .badge.live")).to_be_visible()
    _eventually(lambda: (recommend(server, keys, "next", history)["fallback"] or "").startswith("unknown_item"),
                "the old model served again")


def test_screenshots_of_the_other_pages(shop, page, browser, screenshot):
    server, engine, keys, _ = shop
    save_placement(engine, keys.site_id, PlacementConfig("next", algorithm="gru4rec_next", n=6,
                                                         title="Customers went on to"))
    trained = [m for m in list_models(engine, keys.site_id) if m.metrics.get("heldout")]
    if trained:                                      # the simulator then shows a GRU4Rec model's answers
        promote(engine, keys.site_id, trained[0].id)
        _eventually(lambda: recommend(server, keys, "next", [item_id(3)])["fallback"] is None, "the model")
    log_in(page, server.url)
    page.get_by_role("link", name="Simulator").click()
    page.get_by_role("link", name=re.compile(r"^SKU-010 ")).first.click()
    page.locator('[data-placement] ol.answer-items a').first.click()
    expect(page.locator("ol.visit li")).to_have_count(2)
    screenshot(page.locator("body"), "admin-simulator")
    page.get_by_role("link", name="Sites and keys").click()
    expect(page.get_by_text(keys.publishable_key).first).to_be_visible()
    screenshot(page.locator("body"), "admin-sites")
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Retention").fill("30")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved")).to_be_visible()
    expect(page.get_by_text("in use now: 30")).to_be_visible()
    screenshot(page.locator("body"), "admin-settings")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        log_in(small, server.url)
        expect(small.locator("#side")).to_be_hidden()
        small.get_by_role("button", name="Menu").click()
        small.get_by_role("link", name="Models").click()
        expect(small.get_by_role("heading", name=re.compile("^Models"))).to_be_visible()
        screenshot(small.locator("body"), "admin-models-phone")
        small.goto(server.url + f"/admin/sites/{keys.site_id}/")
        screenshot(small.locator("body"), "admin-overview-phone")
    finally:
        phone.close()


def _eventually(check, what: str, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"not seen within {timeout} s: {what}")
