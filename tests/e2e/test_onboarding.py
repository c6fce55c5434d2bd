"""Issue 18, as a new site owner does it: the README's "Integrating" snippets, pasted verbatim (read from
README.md now; only RECO-HOST and the key replaced, as the admin shows them) into plain static HTML pages with
their own CSS, served by a static file server on another origin than Upnext's. Views, impressions, clicks, cart,
play and purchase must be stored, and the admin's install check must go from red (nothing yet) to amber (views
and impressions but no click) to green, by itself (the page polls). Screenshots of the three states:
tests/output/screenshots/install-check-{red,amber,green}.png."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from backend.simulation.server import ServerProcess
from backend.snippets import README_HOST, README_KEY
from backend.store.db import make_engine, migrate
from backend.store.items import save_items
from backend.store.sites import create_site
from backend.store.tables import Event
from tests.support.readme import integrating_snippets

PASSWORD = "a long admin password"
PAGES = {"Product page": "product.html", "Home page": "index.html", "Category page": "category.html",
         "Video page": "video.html", "Order confirmation page": "thanks.html"}
CSS = """body { font: 16px/1.5 Georgia, serif; margin: 0; color: #222; background: #fbfaf7; }
header { background: #2d3a2e; color: #fff; padding: 0.8rem 2rem; }
main { max-width: 60rem; margin: 1rem auto; padding: 0 1rem; }
[data-upnext] { min-height: 14rem; --upnext-accent: #2d3a2e; }
button { font: inherit; padding: 0.4rem 1rem; }"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def world(tmp_path):
    """(upnext server, store engine, static site origin, site keys)."""
    static = tmp_path / "www"
    static.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(static)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    origin = f"http://localhost:{httpd.server_address[1]}"     # another origin than the server's 127.0.0.1
    url = f"sqlite:///{tmp_path / 'upnext.db'}"
    migrate(url)
    engine = make_engine(url)
    keys = create_site(engine, "shop", [origin])
    save_items(engine, keys.site_id, [{"id": i, "title": f"Item {i}", "url": f"{origin}/product.html?{i}",
                                       "price": 10.0, "currency": "EUR"}
                                      for i in ["SKU-123", "V-7"] + [f"SKU-{k}" for k in range(1, 13)]])
    server = ServerProcess(url, data_dir=tmp_path / "var", log_path=tmp_path / "server.log",
                           env={"UPNEXT_ADMIN_PASSWORD": PASSWORD}).start()
    snippets = integrating_snippets()
    assert [h for h, _ in snippets] == list(PAGES)
    for heading, block in snippets:
        pasted = block.replace(README_HOST, server.url).replace(README_KEY, keys.publishable_key)
        (static / PAGES[heading]).write_text(
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
            f'<link rel="stylesheet" href="site.css"></head><body><header>A plain shop</header><main>'
            f'<h1>{heading}</h1>\n{pasted}\n</main></body></html>')
    (static / "site.css").write_text(CSS)
    try:
        yield server, engine, origin, keys
    finally:
        server.stop()
        engine.dispose()
        httpd.shutdown()
        httpd.server_close()


def stored(engine) -> dict[str, list]:
    with engine.connect() as conn:
        rows = conn.execute(select(Event.type, Event.item).order_by(Event.id)).all()
    out: dict[str, list] = {}
    for type_, item in rows:
        out.setdefault(type_, []).append(item)
    return out


def wait_for_events(page, engine, condition, what):
    for _ in range(60):
        if condition(stored(engine)):
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{what}: stored {stored(engine)}")


def test_the_readme_snippets_pasted_into_a_plain_site_send_everything_and_the_install_check_turns_green(
        world, context, screenshot):
    server, engine, origin, keys = world
    admin = context.new_page()
    admin.goto(server.url + "/admin/")
    admin.get_by_label("Admin password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.goto(f"{server.url}/admin/sites/{keys.site_id}/install")
    expect(admin.locator("#install-status")).to_have_text("red")
    print("red:", screenshot(admin, "install-check-red"))

    shop = context.new_page()
    shop.goto(origin + "/product.html")
    cards = shop.locator('[data-upnext="product-page"] a[part="card"]')
    expect(cards.first).to_be_visible()
    shop.get_by_role("button", name="Add to cart").click()
    wait_for_events(shop, engine, lambda e: e.get("view") == ["SKU-123"] and "rec_impression" in e
                    and e.get("cart") == ["SKU-123"], "the product page's view, impression and cart")
    admin.bring_to_front()
    expect(admin.locator("#install-status")).to_have_text("amber", timeout=30_000)   # no click yet
    expect(admin.locator('[data-check="recs"]')).to_have_attribute("data-status", "amber")
    print("amber:", screenshot(admin, "install-check-amber"))

    shop.bring_to_front()
    cards.first.click()
    shop.wait_for_url("**/product.html?*")
    shop.goto(origin + "/index.html")
    expect(shop.locator('[data-upnext="home"] a[part="card"]').first).to_be_visible()
    shop.goto(origin + "/category.html")
    expect(shop.locator('[data-upnext="category"] a[part="card"]').first).to_be_visible()
    shop.goto(origin + "/video.html")
    expect(shop.locator('[data-upnext="up-next"] a[part="card"]').first).to_be_visible()
    shop.evaluate("document.getElementById('player').dispatchEvent(new Event('play'))")   # no video file here
    shop.goto(origin + "/thanks.html")
    wait_for_events(shop, engine, lambda e: "rec_click" in e and e.get("play") == ["V-7"]
                    and e.get("purchase") == ["SKU-123"] and "V-7" in e.get("view", []),
                    "the click, the video's view and play, the purchase")
    events = stored(engine)
    assert events["view"][0] == "SKU-123" and events["view"][-1] == "V-7"
    assert len(events["rec_click"]) == 1 and events["rec_click"][0].startswith("SKU-")    # a card of the carousel

    admin.bring_to_front()
    expect(admin.locator("#install-status")).to_have_text("green", timeout=30_000)
    for key in ("snippet", "views", "recs", "catalogue", "origins", "model"):
        expect(admin.locator(f'[data-check="{key}"]')).to_have_attribute("data-status", "green")
    expect(admin.locator('[data-check="snippet"]')).to_contain_text(origin)
    print("green:", screenshot(admin, "install-check-green"))
