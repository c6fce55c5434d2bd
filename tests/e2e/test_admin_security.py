"""Admin access in a real Chromium against a real `upnext serve`: the first-visit setup, CSRF rejection (a tampered
token, and a cross-site form that arrives without the SameSite=Strict cookie), login throttling, and names and
titles with HTML in them shown as text everywhere."""
from __future__ import annotations

import re
import time

import httpx

import pytest
from admin_server import log_in, start_server
from playwright.sync_api import expect

from backend.access.credentials import SETUP_CODE_FILE
from backend.access.login_throttle import PER_CLIENT
from backend.store.items import clean_item, upsert_items
from backend.store.placements import PlacementConfig, list_placements, save_placement

pytestmark = pytest.mark.slow
EVIL = "http://evil.test"
XSS = '<img src=x onerror="window.pwned=1">'


@pytest.fixture
def shop(tmp_path):
    server, engine, keys = start_server(tmp_path)
    try:
        yield server, engine, keys
    finally:
        server.terminate()
        engine.dispose()


@pytest.fixture
def fresh(tmp_path):
    """A server with no admin password anywhere: the first visit sets it."""
    server, engine, keys = start_server(tmp_path, password=None, visits=False)
    try:
        yield server, engine, keys, tmp_path / "var"
    finally:
        server.terminate()
        engine.dispose()


def test_first_visit_sets_the_password_then_failed_logins_are_throttled(fresh, page, screenshot):
    server, engine, keys, data_dir = fresh
    page.goto(server.url + "/admin/")
    expect(page.get_by_role("heading", name="Set the admin password")).to_be_visible()
    screenshot(page.locator("body"), "admin-setup")
    page.get_by_label("Setup code").fill((data_dir / SETUP_CODE_FILE).read_text().strip())
    page.get_by_label("New password").fill("my very own password")
    page.get_by_label("The same again").fill("my very own password")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_text("The admin password is set.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    for _ in range(PER_CLIENT):
        page.get_by_label("Admin password").fill("a wrong guess")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    page.get_by_label("Admin password").fill("my very own password")           # right, but too late
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"Too many failed logins from your address: try again in 1[45] minutes\."))
    screenshot(page.locator("body"), "admin-login-throttled")
    page.goto(server.url + "/admin/settings")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_a_tampered_csrf_token_is_refused(shop, page):
    server, engine, keys = shop
    log_in(page, server.url)
    page.goto(server.url + f"/admin/sites/{keys.site_id}/new-placement")
    page.get_by_label("Name").fill("tampered")
    page.locator('form[data-placement-form] input[name="csrf"]').evaluate("el => el.value = 'forged'")
    page.get_by_role("button", name="Create placement").click()
    expect(page.get_by_role("heading", name="Refused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("CSRF check")
    assert list_placements(engine, keys.site_id) == []


def test_a_cross_site_form_arrives_without_the_session(shop, context, page):
    server, engine, keys = shop
    log_in(page, server.url)
    target = server.url + "/admin/settings"
    attack = (f'<form id="f" method="post" action="{target}"><input name="retention_days" value="1"></form>'
              '<script>document.getElementById("f").submit()</script>')
    context.route(EVIL + "/", lambda route: route.fulfill(status=200, content_type="text/html", body=attack))
    evil = context.new_page()
    evil.goto(EVIL + "/")
    evil.wait_for_url(target)
    expect(evil.get_by_role("alert")).to_contain_text("log in again")     # SameSite=Strict: no cookie came
    page.goto(target)                                                     # the admin's own tab: still logged in
    expect(page.get_by_label("Retention")).to_have_value("")


def wait_until_served(server, keys, placement: str, item_id: str, title: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(server.url + "/v1/recommendations", params={"key": keys.publishable_key,
                                                                  "placement": placement, "n": 50})
        if r.status_code == 200 and r.json()["title"] == title and item_id in [i["id"] for i in r.json()["items"]]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{item_id} not served by {placement} ({title!r}) within {timeout} s")


def test_html_in_names_and_titles_is_shown_as_text(shop, page):
    server, engine, keys = shop
    with engine.begin() as conn:
        upsert_items(conn, keys.site_id, [clean_item({"id": "SKU-000", "title": XSS, "url": "/p/0"})])
    save_placement(engine, keys.site_id, PlacementConfig("xss", title=XSS, algorithm="popular", n=3))
    # written behind the server's back: its in-memory catalogue and placements catch up within a refresh period
    wait_until_served(server, keys, "xss", "SKU-000", XSS)
    log_in(page, server.url)
    base = server.url + f"/admin/sites/{keys.site_id}"
    for path, where in (("/placements", "table"), ("/placements/xss", "form"),
                        ("/catalog?q=SKU-000", "table.items"), ("/simulator?h=SKU-000", "ol.visit")):
        page.goto(base + path)
        if path == "/placements/xss":
            expect(page.get_by_label("Title")).to_have_value(XSS)
            preview = page.frame_locator("iframe.preview")
            expect(preview.get_by_role("region", name=XSS)).to_be_visible()
            expect(preview.locator("[part=name]").get_by_text(XSS)).to_be_visible()   # the item title, as text
        else:
            expect(page.locator(where).get_by_text(XSS)).to_be_visible()
        assert page.locator("img[src=x]").count() == 0
    page.goto(server.url + "/admin/sites")
    page.get_by_label("Name").fill('<b>site</b>')
    page.get_by_role("button", name="Create site").click()
    expect(page.get_by_role("alert")).to_contain_text("site name")
    expect(page.get_by_label("Name")).to_have_value("<b>site</b>")
    assert page.evaluate("window.pwned") is None
