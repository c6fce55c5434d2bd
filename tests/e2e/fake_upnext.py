"""A shop (https://shop.test), an Upnext server (https://reco.test) and an image host (https://img.test),
all served by Playwright's request routing: no real server. The fake server records what the widget sends
(recommendation queries, event batches, beacons) and answers as api.md says, or fails on demand."""
from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

SHOP = "https://shop.test"
RECO = "https://reco.test"
IMG = "https://img.test"
KEY = "pk_test_widget"
REPO = Path(__file__).resolve().parents[2]

WORDS = ["Walnut", "Linen", "Copper", "Field", "Harbor", "Alpine", "Velvet", "Cedar", "Slate", "Amber"]
THINGS = ["desk lamp", "throw blanket", "kettle", "backpack", "candle", "mug", "notebook", "armchair"]
CATALOGUE = [{"id": f"SKU-{k}", "title": f"{WORDS[k % 10]} {THINGS[k % 8]}", "url": f"{SHOP}/p/SKU-{k}",
              "image": f"{IMG}/SKU-{k}.svg", "price": round(9.5 + 7.25 * k, 2), "currency": "EUR"}
             for k in range(1, 41)]


def load_build_module():
    """widget/build.py as a module (it is a script, not part of the backend package)."""
    if "widget_build" not in sys.modules:
        spec = importlib.util.spec_from_file_location("widget_build", REPO / "widget" / "build.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["widget_build"] = module
        spec.loader.exec_module(module)
    return sys.modules["widget_build"]


def svg(path: str) -> bytes:
    """A placeholder product picture, its colour derived from the path."""
    hue = int(hashlib.sha256(path.encode()).hexdigest()[:4], 16) % 360
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200"><rect width="200" height="200" '
            f'fill="hsl({hue},55%,82%)"/><circle cx="100" cy="92" r="46" fill="hsl({hue},45%,55%)"/>'
            f'<rect x="44" y="150" width="112" height="14" rx="7" fill="hsl({hue},40%,45%)"/></svg>').encode()


@dataclass
class Attempt:
    """One POST /v1/events as the server saw it."""
    at: float                 # time.monotonic() seconds
    body: dict
    status: int | str         # the answer, or "aborted" when the server was down
    beacon: bool              # sent by navigator.sendBeacon (request type "ping")


@dataclass
class FakeUpnext:
    context: object
    widget_js: bytes
    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    rec_queries: list[dict[str, str]] = field(default_factory=list)
    down: bool = False                                 # every API request fails like a dead server
    event_replies: list[tuple[int, dict]] = field(default_factory=list)   # next answers to POST /v1/events
    answer: Callable[[dict[str, str]], dict] | None = None   # default: popular items from CATALOGUE
    title: str | None = None                            # a placement title the answers carry
    hold_recs: bool = False                             # keep recommendation requests waiting in `held`
    held: list = field(default_factory=list)
    _recs: int = 0

    def __post_init__(self):
        self.context.route(f"{SHOP}/**", self._shop)
        self.context.route(f"{RECO}/**", self._reco)
        self.context.route(f"{IMG}/**", self._image)

    # ---- pages of the shop ----
    def page(self, path: str = "/", body: str = "", item: str | None = None, head: str = "",
             csp: str | None = None, script_attrs: str = "", stub: str = "") -> str:
        """Serve a shop page with the snippet; returns its URL. ``stub``: inline calls made before load."""
        meta = f'<meta name="upnext:item" content="{html.escape(item)}">' if item else ""
        inline = ("<script>window.upnext=window.upnext||function(){(upnext.q=upnext.q||[]).push(arguments)};"
                  f"{stub}</script>") if stub else ""
        doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop {html.escape(path)}'
               f'</title>{meta}{head}{inline}<script async src="{RECO}/w.js" data-key="{KEY}" {script_attrs}>'
               f'</script></head><body><main><h1>Page {html.escape(path)}</h1>{body}</main></body></html>')
        self.pages[path] = (doc, {"Content-Security-Policy": csp} if csp else {})
        return SHOP + path

    def _shop(self, route):
        path = urlsplit(route.request.url).path
        if path not in self.pages:
            self.page(path)           # any other shop page: a plain page with the snippet
        doc, headers = self.pages[path]
        route.fulfill(status=200, body=doc, headers={"Content-Type": "text/html; charset=utf-8", **headers})

    def _image(self, route):
        path = urlsplit(route.request.url).path
        if "broken" in path:
            route.fulfill(status=404, body="no such image")
        else:
            route.fulfill(status=200, body=svg(path), headers={"Content-Type": "image/svg+xml"})

    # ---- the Upnext server ----
    def _cors(self, route) -> dict[str, str]:
        origin = route.request.headers.get("origin", SHOP)
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Expose-Headers": "Retry-After"}

    def _reco(self, route):
        request = route.request
        url = urlsplit(request.url)
        if url.path == "/w.js":
            route.fulfill(status=200, body=self.widget_js,
                          headers={"Content-Type": "text/javascript", "Cache-Control": "no-store"})
        elif self.down:
            if url.path == "/v1/events":
                self.attempts.append(Attempt(time.monotonic(), json.loads(request.post_data or "{}"),
                                             "aborted", request.resource_type == "ping"))
            route.abort("connectionrefused")
        elif url.path == "/v1/recommendations":
            query = dict(parse_qsl(url.query))
            self.rec_queries.append(query)
            if self.hold_recs:
                self.held.append(route)
            else:
                self.fulfill_recs(route)
        elif url.path == "/v1/events" and request.method == "POST":
            status, headers = self.event_replies.pop(0) if self.event_replies else (202, {})
            body = json.loads(request.post_data)
            self.attempts.append(Attempt(time.monotonic(), body, status, request.resource_type == "ping"))
            reply = {"accepted": len(body["events"])} if status == 202 else {"error": "test says no"}
            route.fulfill(status=status, body=json.dumps(reply),
                          headers={"Content-Type": "application/json", **self._cors(route), **headers})
        else:
            route.fulfill(status=404, body="not found")

    def fulfill_recs(self, route):
        query = dict(parse_qsl(urlsplit(route.request.url).query))
        self._recs += 1
        answer = self.answer(query) if self.answer else self.popular(query)
        answer.setdefault("rec", f"r_test{self._recs}")
        route.fulfill(status=200, body=json.dumps(answer),
                      headers={"Content-Type": "application/json", **self._cors(route)})

    def release_held(self):
        while self.held:
            self.fulfill_recs(self.held.pop(0))

    def popular(self, query: dict[str, str]) -> dict:
        """What the real server would answer without a model: popular items, minus exclude and history."""
        skip = set(filter(None, query.get("exclude", "").split(",") + query.get("history", "").split(",")))
        skip.add(query.get("item", ""))
        items = [it for it in CATALOGUE if it["id"] not in skip][:int(query.get("n", 8))]
        answer = {"placement": query.get("placement"), "algorithm": "popular", "arm": "A",
                  "fallback": "cold_session", "items": items}
        if self.title:
            answer["title"] = self.title
        return answer

    # ---- what arrived ----
    @property
    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 202]

    def events(self, type_: str | None = None) -> list[dict]:
        """Every event of accepted batches (each with its batch's session as "session"), oldest first."""
        return [{**ev, "session": a.body["session"]} for a in self.accepted for ev in a.body["events"]
                if type_ is None or ev["type"] == type_]

    def wait_for(self, page, condition: Callable[[], object], timeout_s: float = 6.0, what: str = "condition"):
        """Let the browser run until ``condition()`` is true (route handlers run while we wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            page.wait_for_timeout(50)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def cards(page, placement: str):
    """The recommendation links rendered in a placement (Playwright's CSS engine pierces open shadow roots)."""
    return page.locator(f'[data-upnext="{placement}"] a.a')


def session_storage(page) -> dict[str, str]:
    return page.evaluate("Object.fromEntries(Object.entries(sessionStorage))")
