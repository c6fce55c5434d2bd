"""The widget in a real Chromium: placements found and rendered as carousels, safely, without layout jumps,
under a strict Content-Security-Policy. Pages and API are served by Playwright routing (fake_upnext.py)."""
from __future__ import annotations

import re

from fake_upnext import CATALOGUE, KEY, cards
from playwright.sync_api import expect

SIMILAR = '<div data-upnext="similar" data-title="You may also like"></div>'
SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def test_carousel_renders_the_answer_with_aria_carousel_markup(site, page, screenshot):
    look = "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;color:#1f2937}</style>"
    page.goto(site.page("/p/SKU-1", body=SIMILAR + "<p>Product description</p>", item="SKU-1", head=look))
    links = cards(page, "similar")
    expect(links).to_have_count(8)

    query = site.rec_queries[0]
    assert {k: query[k] for k in ("key", "placement", "item", "history")} == \
        {"key": KEY, "placement": "similar", "item": "SKU-1", "history": "SKU-1"}
    assert "n" not in query          # no data-n: the placement's own item count (set on the server) applies
    assert SESSION_RE.match(query["session"])
    assert "exclude" not in query

    expected = CATALOGUE[1:9]           # popular items minus the page's own item
    assert [links.nth(j).get_attribute("href") for j in range(8)] == [it["url"] for it in expected]
    assert links.nth(0).locator(".n").text_content() == expected[0]["title"]
    assert links.nth(0).locator(".pr").text_content() == f"€{expected[0]['price']:.2f}"
    assert links.nth(0).locator("img").get_attribute("loading") == "lazy"

    region = page.locator('[data-upnext="similar"] section')
    assert region.get_attribute("role") == "region"
    assert region.get_attribute("aria-roledescription") == "carousel"
    expect(page.get_by_role("region", name="You may also like")).to_be_visible()
    slides = page.locator('[data-upnext="similar"] [aria-roledescription="slide"]')
    assert [slides.nth(j).get_attribute("aria-label") for j in range(8)] == [f"{j} of 8" for j in range(1, 9)]
    assert all(slides.nth(j).get_attribute("role") == "group" for j in range(8))
    expect(page.get_by_role("button", name="Previous")).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_role("button", name="Next")).to_have_attribute("aria-disabled", "false")
    page.wait_for_function("[...document.querySelector('[data-upnext]').shadowRoot.querySelectorAll('img')]"
                           ".slice(0, 4).every(img => img.complete && img.naturalWidth > 0)")
    screenshot(page, "widget-carousel")


def test_calls_queued_before_the_script_loads_are_kept(site, page):
    stub = "upnext('track','cart',{item:'SKU-7',value:19.5,currency:'EUR'}); upnext('view','SKU-9');"
    page.goto(site.page("/p/SKU-3", item="SKU-3", stub=stub))
    site.wait_for(page, lambda: len(site.events()) >= 3, what="the queued events")
    events = [{k: v for k, v in ev.items() if k not in ("ts", "session")} for ev in site.events()]
    assert events == [{"type": "view", "item": "SKU-3"},
                      {"type": "cart", "item": "SKU-7", "value": 19.5, "currency": "EUR"},
                      {"type": "view", "item": "SKU-9"}]
    assert page.evaluate("upnext.loaded") == 1


def test_placement_added_later_is_found(site, page):
    page.goto(site.page("/"))
    page.wait_for_function("window.upnext && upnext.loaded")
    assert site.rec_queries == []
    page.evaluate("""() => {
        const box = document.createElement('section');
        box.innerHTML = '<div><div data-upnext="for-you" data-n="4"></div></div>';
        document.querySelector('main').append(box);
    }""")
    expect(cards(page, "for-you")).to_have_count(4)
    assert site.rec_queries[0]["placement"] == "for-you" and site.rec_queries[0]["n"] == "4"


def test_catalogue_text_is_text_and_only_http_urls_are_used(site, page):
    evil = "<img src=x onerror=\"window.pwned=1;alert(1)\">"
    site.answer = lambda q: {"title": "<b onmouseover=alert(2)>Deals</b>", "items": [
        {"id": "SKU-1", "title": evil, "url": "/p/SKU-1", "image": "javascript:alert(3)", "price": 5},
        {"id": "SKU-2", "title": "Bad link", "url": "javascript:alert(4)"},
        {"id": "SKU-3", "title": "Data link", "url": "data:text/html,<script>alert(5)</script>"},
        {"id": "SKU-4", "title": "Fine", "url": "https://shop.test/p/SKU-4", "image": "data:image/svg+xml,<svg/>"},
    ]}
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(site.page("/", body='<div data-upnext="deals"></div>'))
    links = cards(page, "deals")
    expect(links).to_have_count(2)                     # the javascript: and data: links are left out
    assert links.nth(0).locator(".n").text_content() == evil
    assert links.nth(0).get_attribute("href") == "https://shop.test/p/SKU-1"   # relative: against the page
    assert links.nth(1).get_attribute("href") == "https://shop.test/p/SKU-4"
    assert page.locator('[data-upnext="deals"] h2').text_content() == "<b onmouseover=alert(2)>Deals</b>"
    assert page.locator('[data-upnext="deals"] img').count() == 0          # no javascript:/data: image
    assert page.locator('[data-upnext="deals"] b').count() == 0
    page.locator('[data-upnext="deals"] h2').hover()
    page.wait_for_timeout(200)
    assert dialogs == [] and page.evaluate("window.pwned") is None


def test_image_that_fails_leaves_a_text_only_card(site, page):
    site.answer = lambda q: {"items": [
        {**CATALOGUE[0], "image": "https://img.test/broken.svg"}, CATALOGUE[1],
        {**CATALOGUE[2], "image": None}]}
    page.goto(site.page("/", body='<div data-upnext="home"></div>'))
    links = cards(page, "home")
    expect(links).to_have_count(3)
    expect(links.nth(0).locator(".m.x")).to_have_text(CATALOGUE[0]["title"][0])
    assert links.nth(0).locator("img").count() == 0
    assert links.nth(1).locator("img").count() == 1
    expect(links.nth(2).locator(".m.x")).to_have_text(CATALOGUE[2]["title"][0])
    boxes = [links.nth(j).bounding_box() for j in range(3)]
    assert len({round(b["height"]) for b in boxes}) == 1   # text-only cards keep the card's size


def test_height_is_reserved_while_the_answer_is_on_its_way(site, page, screenshot):
    site.hold_recs = True
    page.goto(site.page("/", body=SIMILAR + '<p id="below">Below the carousel</p>', item="SKU-1"))
    site.wait_for(page, lambda: site.held, what="the recommendations request")
    host = page.locator('[data-upnext="similar"]')
    waiting = host.bounding_box()["height"], page.locator("#below").bounding_box()["y"]
    assert waiting[0] > 150
    assert page.locator('[data-upnext="similar"] [aria-busy="true"]').count() == 1
    screenshot(page, "widget-carousel-loading")
    site.release_held()
    expect(cards(page, "similar")).to_have_count(8)
    assert (host.bounding_box()["height"], page.locator("#below").bounding_box()["y"]) == waiting


def test_strict_csp_page_still_renders(site, page, context):
    context.add_init_script("window.violations = []; document.addEventListener('securitypolicyviolation',"
                            " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));")
    csp = ("default-src 'none'; script-src https://reco.test; style-src 'self'; img-src https://img.test; "
           "connect-src https://reco.test; base-uri 'none'; form-action 'none'")
    page.goto(site.page("/p/SKU-2", body=SIMILAR, item="SKU-2", csp=csp))
    expect(cards(page, "similar")).to_have_count(8)
    # the adopted stylesheet applies: the strip is a scroll-snapping grid, the cards have their layout
    assert page.evaluate("""() => {
        const strip = document.querySelector('[data-upnext]').shadowRoot.querySelector('.tr');
        const s = getComputedStyle(strip);
        return [s.display, s.scrollSnapType, s.overflowX];
    }""") == ["grid", "x mandatory", "auto"]
    page.wait_for_timeout(100)
    assert page.evaluate("window.violations") == []


def test_other_carousels_items_are_excluded_and_requests_follow_the_page_order(site, page):
    body = '<div data-upnext="similar" data-n="4"></div><div data-upnext="next" data-n="4"></div>'
    page.goto(site.page("/p/SKU-1", body=body, item="SKU-1"))
    expect(cards(page, "next")).to_have_count(4)
    first, second = site.rec_queries
    assert first["placement"] == "similar" and "exclude" not in first
    assert second["placement"] == "next" and second["exclude"] == "SKU-2,SKU-3,SKU-4,SKU-5"
    hrefs = [cards(page, "next").nth(j).get_attribute("href") for j in range(4)]
    assert hrefs == [f"https://shop.test/p/SKU-{k}" for k in (6, 7, 8, 9)]


def test_title_from_the_answer_and_empty_answers_collapse(site, page):
    site.title = "Trending now"
    site.answer = lambda q: {"items": []} if q["placement"] == "empty" else site.popular(q)
    page.goto(site.page("/", body='<div data-upnext="home"></div><div data-upnext="empty"></div>'))
    expect(cards(page, "home")).to_have_count(8)
    expect(page.get_by_role("region", name="Trending now")).to_be_visible()
    site.wait_for(page, lambda: len(site.rec_queries) == 2, what="both requests")
    page.wait_for_function("document.querySelector('[data-upnext=empty]').getBoundingClientRect().height === 0")


def test_single_page_route_change_rereads_the_item_and_rerenders(site, page):
    page.goto(site.page("/p/SKU-1", body='<div data-upnext="similar" data-n="4"></div>', item="SKU-1"))
    expect(cards(page, "similar").first).to_have_attribute("href", "https://shop.test/p/SKU-2")
    page.evaluate("""() => {
        history.pushState({}, '', '/p/SKU-2');
        document.querySelector('meta[name="upnext:item"]').content = 'SKU-2';
        upnext('page');
    }""")
    expect(cards(page, "similar").first).to_have_attribute("href", "https://shop.test/p/SKU-3")
    assert [q["item"] for q in site.rec_queries] == ["SKU-1", "SKU-2"]
    assert site.rec_queries[1]["history"] == "SKU-1,SKU-2"
    assert "exclude" not in site.rec_queries[1]     # the items shown belong to the page that is gone
    site.wait_for(page, lambda: len(site.events("view")) == 2, what="the second view")
    assert [ev["item"] for ev in site.events("view")] == ["SKU-1", "SKU-2"]


def test_theming_through_custom_properties_and_small_screens(site, page, screenshot):
    theme = ("<style>body{font-family:system-ui,sans-serif;margin:1rem}"
             "[data-upnext]{--upnext-accent:rgb(200, 0, 80);--upnext-card-width:120px;--upnext-radius:0px;"
             "--upnext-card-bg:rgb(250, 245, 235);--upnext-card-padding:6px}</style>")
    page.goto(site.page("/p/SKU-1", body=SIMILAR, item="SKU-1", head=theme))
    links = cards(page, "similar")
    expect(links).to_have_count(8)
    assert links.nth(0).bounding_box()["width"] == 120
    links.nth(0).focus()
    style = links.nth(0).evaluate("a => { const s = getComputedStyle(a);"
                                  " return [s.outlineColor, s.backgroundColor, s.borderRadius]; }")
    assert style == ["rgb(200, 0, 80)", "rgb(250, 245, 235)", "0px"]

    small = site.page("/p/SKU-2", body=SIMILAR, item="SKU-2",
                      head="<style>body{font-family:system-ui,sans-serif;margin:1rem}</style>")
    page.set_viewport_size({"width": 375, "height": 700})
    page.goto(small)
    expect(links).to_have_count(8)
    assert links.nth(0).bounding_box()["width"] == 144          # 9rem: about two and a half cards
    screenshot(page, "widget-carousel-mobile")


def test_script_loaded_twice_renders_once_and_data_api_points_elsewhere(site, page, context):
    seen = []

    def other_host(route):
        seen.append(route.request.url)
        site.fulfill_recs(route)

    context.route("https://api.test/upnext/v1/**", other_host)
    api = 'data-api="https://api.test/upnext/"'
    twice = f'<script async src="https://reco.test/w.js" data-key="pk_other" {api}></script>'
    page.goto(site.page("/", body='<div data-upnext="home" data-n="3"></div>', head=twice, script_attrs=api))
    page.wait_for_function("window.upnext && upnext.loaded")
    expect(cards(page, "home")).to_have_count(3)
    page.wait_for_timeout(300)
    assert len(seen) == 1 and site.rec_queries == []           # one copy ran, and asked the data-api host
    assert seen[0].startswith("https://api.test/upnext/v1/recommendations?")
    assert ("key=pk_other" in seen[0]) != ("key=pk_test_widget" in seen[0])


def test_placements_it_cannot_own_are_left_alone(site, page):
    warnings = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    body = ('<p data-upnext="in-a-paragraph-is-fine" data-n="2"></p><img data-upnext="void" alt="">'
            '<div id="custom" data-upnext="taken"></div><div data-upnext="ok" data-n="2"></div>')
    page.goto(site.page("/", body=body, head="<script>document.addEventListener('DOMContentLoaded', () => "
                        "{ document.getElementById('custom').attachShadow({mode: 'open'}).innerHTML = "
                        "'<i>site widget</i>'; });</script>"))
    expect(cards(page, "ok")).to_have_count(2)
    expect(cards(page, "in-a-paragraph-is-fine")).to_have_count(2)
    assert page.locator("#custom i").text_content() == "site widget"      # its own shadow root untouched
    assert sorted(q["placement"] for q in site.rec_queries) == ["in-a-paragraph-is-fine", "ok"]
    assert sum("cannot render into" in w for w in warnings) == 2
