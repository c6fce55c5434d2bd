"""Reliability: a dead or overloaded server never breaks the page (the `page` fixture fails a test on any
uncaught error or unhandled rejection); unacknowledged events wait in sessionStorage (bounded) and are
retried with backoff, honouring Retry-After; a refused batch is dropped; beacons carry events when the
page is hidden or goes away."""
from __future__ import annotations

import json

from fake_upnext import SHOP, cards, session_storage
from playwright.sync_api import expect

SIMILAR = '<div data-upnext="similar"></div>'


def queued(page) -> list[dict]:
    return json.loads(session_storage(page).get("upnext:queue", "[]"))


def test_dead_api_leaves_the_page_working_and_the_events_arrive_on_a_later_page(site, page):
    site.down = True
    page.goto(site.page("/p/SKU-1", body=SIMILAR + "<button id=buy>Buy</button>", item="SKU-1",
                        stub="upnext('track','cart',{item:'SKU-1'});"))
    site.wait_for(page, lambda: site.attempts, what="a failed attempt")
    page.wait_for_function("document.querySelector('[data-upnext]').getBoundingClientRect().height === 0")
    page.click("#buy")                                    # the page itself still works
    assert [e["e"]["type"] for e in queued(page)] == ["view", "cart"]

    site.down = False
    page.goto(site.page("/p/SKU-2", body=SIMILAR, item="SKU-2"))
    expect(cards(page, "similar")).to_have_count(8)
    site.wait_for(page, lambda: len(site.events()) >= 4, what="the queued events")
    assert [(e["type"], e.get("item")) for e in site.events()] == [
        ("view", "SKU-1"), ("cart", "SKU-1"), ("view", "SKU-2"), ("rec_impression", None)]
    page.wait_for_timeout(200)
    assert queued(page) == []


def test_events_are_retried_on_the_same_page_when_the_server_comes_back(site, page):
    site.down = True
    page.goto(site.page("/p/SKU-1", item="SKU-1"))
    site.wait_for(page, lambda: site.attempts, what="a failed attempt")
    site.down = False
    site.wait_for(page, lambda: site.accepted, timeout_s=8, what="the retry")
    assert [e["item"] for e in site.events("view")] == ["SKU-1"]


def test_429_and_503_are_retried_after_retry_after(site, page):
    site.event_replies = [(429, {"Retry-After": "2"}), (503, {"Retry-After": "1"})]
    page.goto(site.page("/p/SKU-1", item="SKU-1"))
    site.wait_for(page, lambda: site.accepted, timeout_s=10, what="the accepted batch")
    first, second, third = site.attempts
    assert [a.status for a in site.attempts] == [429, 503, 202]
    assert first.body == second.body == third.body
    assert second.at - first.at >= 1.9 and third.at - second.at >= 0.9
    page.wait_for_timeout(300)
    assert len(site.attempts) == 3 and queued(page) == []


def test_a_refused_batch_is_dropped_not_retried(site, page):
    site.event_replies = [(400, {})]
    page.goto(site.page("/p/SKU-1", item="SKU-1"))
    site.wait_for(page, lambda: site.attempts, what="the refused batch")
    page.wait_for_timeout(2500)
    assert len(site.attempts) == 1 and queued(page) == []
    page.evaluate("upnext('track', 'cart', {item: 'SKU-1'})")        # later events still go through
    site.wait_for(page, lambda: site.accepted, what="the next batch")
    assert [e["type"] for e in site.events()] == ["cart"]


def test_the_queue_is_bounded_and_drops_the_oldest(site, page):
    site.down = True
    page.goto(site.page("/p/SKU-1", item="SKU-1"))
    page.wait_for_function("window.upnext && upnext.loaded")
    page.evaluate("for (let k = 0; k < 250; k++) upnext('track', 'cart', {item: 'i' + k})")
    q = queued(page)
    assert len(q) == 200
    assert [e["e"]["item"] for e in q] == [f"i{k}" for k in range(50, 250)]    # the view and i0-i49 dropped

    site.down = False
    page.goto(site.page("/p/SKU-2"))
    site.wait_for(page, lambda: len(site.events()) >= 200, timeout_s=10, what="the 200 queued events")
    assert [e["item"] for e in site.events()] == [f"i{k}" for k in range(50, 250)]
    assert max(len(a.body["events"]) for a in site.accepted) <= 50       # the server takes 100 at most


def test_hidden_page_hands_the_queue_to_send_beacon(site, page):
    page.goto(site.page("/p/SKU-1", item="SKU-1"))
    page.wait_for_function("window.upnext && upnext.loaded")
    page.evaluate("""() => {
        upnext('track', 'cart', {item: 'SKU-1'});
        Object.defineProperty(document, 'visibilityState', {get: () => 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    site.wait_for(page, lambda: site.accepted, what="the beacon")
    assert [a.beacon for a in site.attempts] == [True]
    assert [(e["type"], e["item"]) for e in site.events()] == [("view", "SKU-1"), ("cart", "SKU-1")]
    page.wait_for_timeout(1300)
    assert len(site.attempts) == 1 and queued(page) == []        # not sent a second time by fetch


def test_leaving_the_page_hands_the_queue_to_send_beacon(site, page, context):
    # Playwright cannot route requests made while a document unloads (Chromium does send them), so a spy on
    # navigator.sendBeacon records what the widget hands over, in sessionStorage, for the next page to read.
    context.add_init_script("""{
        const send = navigator.sendBeacon.bind(navigator);
        navigator.sendBeacon = (url, body) => {
            const spied = JSON.parse(sessionStorage.getItem('spy') || '[]');
            sessionStorage.setItem('spy', JSON.stringify(spied.concat([[url, body]])));
            return send(url, body);
        };
    }""")
    page.goto(site.page("/p/SKU-1", item="SKU-1"))
    page.wait_for_function("window.upnext && upnext.loaded")
    page.evaluate("upnext('track', 'cart', {item: 'SKU-1'})")
    page.goto(f"{SHOP}/elsewhere")                     # within the 1 s batching delay
    [(url, body)] = json.loads(session_storage(page)["spy"])
    assert url == "https://reco.test/v1/events"
    assert [(e["type"], e["item"]) for e in json.loads(body)["events"]] == [("view", "SKU-1"), ("cart", "SKU-1")]
    assert site.attempts == [] and queued(page) == []
