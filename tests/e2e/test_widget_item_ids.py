"""Item ids the server refuses, in real Chromium against a real `upnext serve` (its own checks, not a fake's):
a page whose item id cannot be sent (a non-breaking space, a zero-width joiner, a direction mark) still shows
its cards, and so does the next page, and the visit's other events are stored."""
from __future__ import annotations

import html
import json
import time
from urllib.parse import urlsplit

import pytest
from fake_upnext import CATALOGUE, IMG, RECO, SHOP, cards, svg
from playwright.sync_api import expect

from backend.simulation.server import ServerProcess
from backend.store.db import make_engine, migrate
from backend.store.items import clean_item, save_items
from backend.store.sites import create_site

SIMILAR = '<div data-upnext="similar"></div>'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server with a site for https://shop.test and its catalogue, no model (answers from the catalogue).
    The site requires an Origin on events: the widget's requests and beacons carry one, so nothing is lost."""
    root = tmp_path_factory.mktemp("ids")
    url = f"sqlite:///{root / 'upnext.db'}"
    migrate(url)
    engine = make_engine(url)
    keys = create_site(engine, "shop", [SHOP], require_origin=True)
    save_items(engine, keys.site_id, [clean_item(it) for it in CATALOGUE])
    with ServerProcess(url, data_dir=root / "var", log_path=root / "server.log") as server:
        server.keys, server.engine = keys, engine
        yield server
    engine.dispose()


class Shop:
    """The shop's pages and images routed by Playwright; https://reco.test forwarded to the real server, except
    /w.js, which is the widget built from widget/src now. Records the status of every recommendation answer and every event batch."""

    def __init__(self, context, widget_js: bytes, server):
        self.server, self.widget_js, self.pages = server, widget_js, {}
        self.rec_statuses, self.batches, self.kinds = [], [], []
        context.route(f"{SHOP}/**", self._shop)
        context.route(f"{IMG}/**", lambda route: route.fulfill(body=svg(urlsplit(route.request.url).path),
                                                               headers={"Content-Type": "image/svg+xml"}))
        context.route(f"{RECO}/**", self._reco)

    def stored(self, page, timeout_s: float = 10) -> list[tuple[str, str | None]]:
        """(type, item) of the events the server accepted, once a view of SKU-2 is among them."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [(e["type"], e.get("item")) for status, events in self.batches if status == 202 for e in events]
            if ("view", "SKU-2") in found or time.monotonic() > deadline:
                return found
            page.wait_for_timeout(100)

    def page(self, path: str, item: str) -> str:
        self.pages[path] = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                            f'<meta name="upnext:item" content="{html.escape(item)}">'
                            f'<script async src="{RECO}/w.js" data-key="{self.server.keys.publishable_key}">'
                            f'</script></head><body><main>{SIMILAR}</main></body></html>')
        return SHOP + path

    def _shop(self, route):
        doc = self.pages.get(urlsplit(route.request.url).path, "<!doctype html><p>no such page</p>")
        route.fulfill(body=doc, headers={"Content-Type": "text/html; charset=utf-8"})

    def _reco(self, route):
        parts = urlsplit(route.request.url)
        if parts.path == "/w.js":
            route.fulfill(body=self.widget_js, headers={"Content-Type": "text/javascript"})
            return
        target = self.server.url + parts.path + (f"?{parts.query}" if parts.query else "")
        response = route.fetch(url=target)
        if parts.path == "/v1/recommendations":
            self.rec_statuses.append(response.status)
        elif parts.path == "/v1/events" and route.request.method == "POST":
            self.batches.append((response.status, json.loads(route.request.post_data)["events"]))
            self.kinds.append(route.request.resource_type)       # "fetch", or "ping" for a beacon
        route.fulfill(response=response)


def history(page) -> list[str]:
    return page.evaluate("() => JSON.parse(sessionStorage.getItem('upnext:session')).history")


@pytest.mark.parametrize("bad", ["SKU-3\u00a0", "SKU\u200d3", "\u200fSKU-3"],
                         ids=["non-breaking space", "zero-width joiner", "right-to-left mark"])
def test_a_page_with_an_id_the_server_refuses_still_shows_cards_and_so_does_the_next(bad, server, context,
                                                                                   widget_js, page):
    shop = Shop(context, widget_js, server)
    page.goto(shop.page("/p/bad", bad))
    expect(cards(page, "similar")).to_have_count(8)
    assert bad not in history(page)

    page.goto(shop.page("/p/SKU-2", "SKU-2"))
    expect(cards(page, "similar")).to_have_count(8)
    assert history(page) == ["SKU-2"]
    assert shop.rec_statuses == [200, 200]
    stored = shop.stored(page)
    assert ("view", "SKU-2") in stored and ("rec_impression", None) in stored     # the visit is kept
    assert all(status == 202 for status, _ in shop.batches) and ("view", bad) not in stored


def test_a_history_left_by_an_older_widget_with_a_refused_id_is_cleaned(server, context, widget_js, page):
    """An older widget stored such ids in the session's history: the first page after the upgrade still works."""
    shop = Shop(context, widget_js, server)
    stale = {"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "last": int(time.time() * 1000), "history": ["SKU-1", "SKU\u00a04"]}
    context.add_init_script(f"sessionStorage.setItem('upnext:session', {json.dumps(json.dumps(stale))})")
    page.goto(shop.page("/p/SKU-2", "SKU-2"))
    expect(cards(page, "similar")).to_have_count(8)
    assert history(page) == ["SKU-1", "SKU-2"]
    assert shop.rec_statuses == [200]


def test_beacons_carry_an_origin_so_a_site_that_requires_one_keeps_them(server, context, widget_js, page):
    """The events a page hands to the browser as it goes away (sendBeacon) reach a site that requires an Origin."""
    shop = Shop(context, widget_js, server)
    page.goto(shop.page("/p/SKU-5", "SKU-5"))
    expect(cards(page, "similar")).to_have_count(8)
    page.evaluate("window.dispatchEvent(new Event('pagehide'))")     # before the 1 s flush: the widget hands off
    deadline = time.monotonic() + 10
    while "ping" not in shop.kinds and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert "ping" in shop.kinds
    assert [status for status, _ in shop.batches] == [202] * len(shop.batches)
    assert ("view", "SKU-5") in [(e["type"], e.get("item")) for _, events in shop.batches for e in events]
