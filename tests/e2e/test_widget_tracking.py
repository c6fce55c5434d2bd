"""What the widget sends to POST /v1/events: views that join the session history, viewable impressions,
clicks with their rec id (surviving the navigation they cause), site events from upnext('track', ...)."""
from __future__ import annotations

from fake_upnext import cards
from playwright.sync_api import expect

TWO = '<div data-upnext="similar" data-n="4"></div><div data-upnext="next" data-n="4"></div>'


def plain(events):
    return [{k: v for k, v in ev.items() if k not in ("ts", "session")} for ev in events]


def test_page_item_is_viewed_and_joins_the_history_of_later_pages(site, page):
    page.goto(site.page("/p/SKU-1", body=TWO, item="SKU-1"))
    site.wait_for(page, lambda: site.events("view"), what="the view")
    page.goto(site.page("/p/SKU-5", body=TWO, item="SKU-5"))
    site.wait_for(page, lambda: len(site.events("view")) == 2, what="the second view")
    views = site.events("view")
    assert plain(views) == [{"type": "view", "item": "SKU-1"}, {"type": "view", "item": "SKU-5"}]
    assert views[0]["session"] == views[1]["session"] == site.rec_queries[-1]["session"]
    assert isinstance(views[0]["ts"], int) and views[0]["ts"] > 1.7e12     # milliseconds
    assert site.rec_queries[-1]["history"] == "SKU-1,SKU-5"


def test_click_on_a_recommendation_sends_rec_click_with_that_answers_rec(site, page):
    page.goto(site.page("/p/SKU-1", body=TWO, item="SKU-1"))
    site.page("/p/SKU-8", body=TWO, item="SKU-8")
    expect(cards(page, "next")).to_have_count(4)
    link = cards(page, "next").nth(2)
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(href)
    site.wait_for(page, lambda: site.events("rec_click"), what="the rec_click")
    # the second answer (placement "next") had rec r_test2; its third item is SKU-8
    assert plain(site.events("rec_click")) == [{"type": "rec_click", "rec": "r_test2", "item": "SKU-8"}]
    assert any(a.beacon for a in site.accepted)            # handed to a beacon: it survives the navigation
    site.wait_for(page, lambda: len(site.rec_queries) == 4, what="the next page's requests")
    assert site.rec_queries[2]["history"] == "SKU-1,SKU-8"


def test_impression_is_sent_once_when_at_least_half_of_the_carousel_is_visible(site, page):
    body = '<div style="height:1600px">Long description</div><div data-upnext="similar"></div>' \
           '<div style="height:1600px"></div>'
    page.goto(site.page("/p/SKU-1", body=body, item="SKU-1"))
    expect(cards(page, "similar")).to_have_count(8)
    host = page.locator('[data-upnext="similar"]')
    top = page.evaluate("document.querySelector('[data-upnext]').getBoundingClientRect().top + scrollY")
    height = host.bounding_box()["height"]
    viewport = page.viewport_size["height"]

    page.evaluate(f"scrollTo(0, {top - viewport + 0.35 * height})")          # 35% visible
    site.wait_for(page, lambda: site.events("view"), what="the view batch")
    page.wait_for_timeout(1300)
    assert site.events("rec_impression") == []

    page.evaluate(f"scrollTo(0, {top - viewport + 0.7 * height})")           # 70% visible
    site.wait_for(page, lambda: site.events("rec_impression"), what="the impression")
    page.evaluate("scrollTo(0, 0)")
    page.wait_for_timeout(100)
    page.evaluate(f"scrollTo(0, {top - 100})")
    page.wait_for_timeout(1300)
    assert plain(site.events("rec_impression")) == [
        {"type": "rec_impression", "rec": "r_test1", "items": [f"SKU-{k}" for k in range(2, 10)]}]


def test_site_events_are_sent_as_the_api_describes_and_bad_calls_are_refused_in_the_page(site, page):
    warnings = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    page.goto(site.page("/cart"))
    page.wait_for_function("window.upnext && upnext.loaded")
    page.evaluate("""() => {
        upnext('track', 'cart', {item: 'SKU-5', rec: 'r_abc', color: 'red'});
        upnext('track', 'purchase', {item: 'SKU-5', value: 49.9, currency: 'EUR'});
        upnext('track', 'play', {item: 'V-7'});
        upnext('track', 'watch', {item: 'V-7', seconds: 95.5});
        upnext('track', 'purchase', {value: 3});          // no item
        upnext('track', 'watch', {item: 'V-7'});          // no seconds
        upnext('track', 'wishlist', {item: 'SKU-5'});     // not an event type
        upnext('dance');
    }""")
    site.wait_for(page, lambda: len(site.events()) >= 4, what="the events")
    assert plain(site.events()) == [
        {"type": "cart", "item": "SKU-5", "rec": "r_abc"},
        {"type": "purchase", "item": "SKU-5", "value": 49.9, "currency": "EUR"},
        {"type": "play", "item": "V-7"},
        {"type": "watch", "item": "V-7", "seconds": 95.5},
    ]
    assert len(site.accepted) == 1                          # one batch
    assert len([w for w in warnings if w.startswith("upnext:")]) == 4
    page.goto(site.page("/watch/V-8", body='<div data-upnext="up-next"></div>'))
    site.wait_for(page, lambda: len(site.rec_queries) == 1, what="the request")
    assert site.rec_queries[0]["history"] == "V-7"          # a play joins the history, like a view


def test_a_placements_data_item_is_the_page_item_when_the_page_declares_none(site, page):
    """Issue 18: the README's product-page snippet (script tag + a placement with data-item) sent no view."""
    body = '<div data-upnext="similar" data-item="SKU-3"></div><div data-upnext="next" data-item="SKU-3"></div>'
    page.goto(site.page("/p/SKU-3", body=body))
    site.wait_for(page, lambda: site.events("view"), what="the view")
    assert plain(site.events("view")) == [{"type": "view", "item": "SKU-3"}]


def test_placements_naming_different_items_declare_no_page_item(site, page):
    body = '<div data-upnext="similar" data-item="SKU-3"></div><div data-upnext="next" data-item="SKU-4"></div>'
    warnings = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.goto(site.page("/cart", body=body))
    expect(cards(page, "next")).to_have_count(8)
    page.wait_for_timeout(1500)          # a view would have been flushed by now (1 s batching)
    assert site.events("view") == []
    assert any("different data-item" in w for w in warnings)
    assert {q.get("item") for q in site.rec_queries} == {"SKU-3", "SKU-4"}
