"""The placement form's merchandising controls in a real Chromium against a real `upnext serve`: a bad rule is
refused with a message and the typed text kept; the saved rules, pins and blocked items shape the widget in the
preview, and the table beside it says which control removed or moved which item."""
from __future__ import annotations

import httpx
import pytest
from admin_server import log_in, start_server
from playwright.sync_api import expect

from backend.store.placements import list_placements

pytestmark = pytest.mark.slow

# E2E-0..7: prices 10..80; E2E-2 is a boot, E2E-8 and E2E-9 are hats
ITEMS = [{"id": f"E2E-{i}", "title": f"Item {i}", "url": f"https://shop.example/p/{i}", "price": 10.0 * (i + 1),
          "currency": "EUR", "category": "hats" if i >= 8 else "boots" if i == 2 else "shoes"} for i in range(10)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    server, engine, keys = start_server(tmp_path_factory.mktemp("controls-e2e"), visits=False)
    try:
        r = httpx.put(server.url + "/v1/items", json=ITEMS, headers={"Authorization": f"Bearer {keys.secret_key}"})
        assert r.status_code == 200, r.text
        yield server, engine, keys
    finally:
        server.terminate()
        engine.dispose()


def test_rules_pins_and_blocked_items_in_the_form_and_the_preview(shop, page, screenshot):
    server, engine, keys = shop
    log_in(page, server.url)
    page.get_by_role("link", name="Placements", exact=True).click()
    page.get_by_role("link", name="New placement").click()
    page.get_by_label("Name").fill("controlled")
    page.get_by_label("Algorithm", exact=True).select_option("popular")
    page.get_by_label("Items", exact=True).fill("4")
    page.get_by_label("Pinned items").fill("E2E-9 @ 1")
    page.get_by_label("Blocked items").fill("E2E-1")
    page.get_by_label("Rules").fill("category in shoes\nprice from 1 to 50")
    page.get_by_role("button", name="Create placement").click()
    error = page.locator("[data-form-error]")
    expect(error).to_contain_text("rules: 'price from 1 to 50': not a rule; write one of")
    expect(page.get_by_label("Rules")).to_have_value("category in shoes\nprice from 1 to 50")   # text kept
    assert list_placements(engine, keys.site_id) == []

    page.get_by_label("Name").fill("controlled")
    page.get_by_label("Algorithm", exact=True).select_option("popular")
    page.get_by_label("Items", exact=True).fill("4")
    page.get_by_label("Pinned items").fill("E2E-9 @ 1")
    page.get_by_label("Blocked items").fill("E2E-1")
    page.get_by_label("Rules").fill("category in shoes\nprice <= 50")
    page.get_by_role("button", name="Create placement").click()
    expect(page.get_by_text("Placement saved.")).to_be_visible()
    [cfg] = list_placements(engine, keys.site_id)
    assert cfg.pinned == (("E2E-9", 1),) and cfg.blocked == ("E2E-1",) and len(cfg.rules) == 2

    # no model: the newest catalogue items fill the list (E2E-0, 1, 2, 3 without the controls)
    preview = page.frame_locator("iframe.preview")
    cards = preview.locator('[data-upnext="controlled"] a.a')
    expect(cards).to_have_count(4)
    expect(cards.first).to_contain_text("Item 9")                                 # pinned first
    steps = page.locator("table[data-preview-steps]")
    expect(steps.locator("tr").filter(has_text="E2E-1")).to_contain_text("removed")
    expect(steps.locator("tr").filter(has_text="E2E-1")).to_contain_text("blocked")
    expect(steps.locator("tr").filter(has_text="E2E-2")).to_contain_text("rule 1: category in shoes")
    expect(steps.locator("tr").filter(has_text="E2E-9")).to_contain_text("pinned")
    screenshot(page.locator("body"), "admin-placement-controls")

    # on the page of E2E-9 itself the pin is skipped and the table follows the previewed page
    page.locator("#preview-item").fill("E2E-9")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table[data-preview-steps] tr").filter(has_text="E2E-9")).to_have_count(0)
    expect(preview.locator('[data-upnext="controlled"] a.a')).to_have_count(3)     # shoes <= 50: E2E-0, 3, 4
