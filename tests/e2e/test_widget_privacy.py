"""Privacy: the session lives in sessionStorage only (no cookie, no localStorage), a 30-minute idle gap
starts a new one, and with Global Privacy Control on nothing is stored or sent while popular items show."""
from __future__ import annotations

import re

from fake_upnext import SHOP, cards, session_storage
from playwright.sync_api import expect

SIMILAR = '<div data-upnext="similar"></div>'
GPC_ON = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"


def test_a_visit_leaves_no_cookie_and_no_local_storage(site, page, context):
    page.goto(site.page("/p/SKU-1", body=SIMILAR, item="SKU-1"))
    expect(cards(page, "similar")).to_have_count(8)
    site.wait_for(page, lambda: site.events(), what="the events")
    cards(page, "similar").nth(0).click()
    page.wait_for_url(f"{SHOP}/p/SKU-2")
    page.wait_for_function("window.upnext && upnext.loaded")
    assert context.cookies() == []
    assert page.evaluate("[document.cookie, localStorage.length]") == ["", 0]
    stored = session_storage(page)
    assert set(stored) <= {"upnext:session", "upnext:queue", "upnext:retry"}
    session_id = site.events()[0]["session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", session_id) and len(session_id) * 6 >= 128
    assert session_id in stored["upnext:session"]


def test_global_privacy_control_sends_nothing_but_popular_items_show(site, page, context):
    context.add_init_script(GPC_ON)
    page.goto(site.page("/p/SKU-1", body=SIMILAR, item="SKU-1",
                        stub="upnext('track','cart',{item:'SKU-1'});"))
    expect(cards(page, "similar")).to_have_count(8)
    query = site.rec_queries[0]
    assert "session" not in query and "history" not in query
    assert query["item"] == "SKU-1"                          # the page's item is context, not a profile
    page.evaluate("document.querySelector('[data-upnext]').scrollIntoView()")
    page.evaluate("upnext('view', 'SKU-4'); upnext('track', 'purchase', {item: 'SKU-4', value: 5})")
    page.wait_for_timeout(1500)
    cards(page, "similar").nth(0).click()
    page.wait_for_url(f"{SHOP}/p/SKU-2")
    page.wait_for_timeout(300)
    assert site.attempts == []
    assert session_storage(page) == {}


def test_thirty_idle_minutes_start_a_new_session(site, page):
    page.clock.install()
    page.goto(site.page("/p/SKU-1", body=SIMILAR, item="SKU-1"))
    site.wait_for(page, lambda: site.events("view"), what="the first view")
    first = site.rec_queries[-1]["session"]

    page.clock.fast_forward("29:00")
    page.goto(site.page("/p/SKU-2", body=SIMILAR, item="SKU-2"))
    site.wait_for(page, lambda: len(site.rec_queries) == 2, what="the second request")
    assert site.rec_queries[-1]["session"] == first
    assert site.rec_queries[-1]["history"] == "SKU-1,SKU-2"
    site.wait_for(page, lambda: len(site.events("view")) == 2, what="the second view")

    page.clock.fast_forward("30:01")
    page.goto(site.page("/p/SKU-3", body=SIMILAR, item="SKU-3"))
    site.wait_for(page, lambda: len(site.rec_queries) == 3, what="the third request")
    assert site.rec_queries[-1]["session"] != first
    assert site.rec_queries[-1]["history"] == "SKU-3"          # the old history went with the old session
    site.wait_for(page, lambda: len(site.events("view")) == 3, what="the third view")
    assert [v["session"] == first for v in site.events("view")] == [True, True, False]
