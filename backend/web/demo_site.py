"""The demo shop and video site (``/demo/...``): server-rendered pages of the demo site's catalogue, each with
the widget snippet and its placements, exactly as a real site would integrate Upnext."""
from __future__ import annotations

import functools
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from backend.demo.images import item_svg
from backend.demo.inventory import demo_catalog
from backend.settings import resource_dir
from backend.store.sites import sites_by_name
from backend.web.http import services

DEMO_DIR = resource_dir("static") / "demo"
DEMO_SITES = {"shop": "demo-shop", "video": "demo-video"}
templates = Jinja2Templates(directory=str(DEMO_DIR / "templates"))
# The demo pages run under a strict policy, as a careful site would: no inline scripts or styles anywhere.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
templates.env.filters["urlquote"] = lambda s: quote(str(s), safe="")


@functools.cache
def _demo_items() -> dict:
    return {it.id: it for it in demo_catalog()}


async def _site(request: Request, section: str) -> tuple[int, str] | None:
    """(site id, publishable key) of the demo shop or video site, looked up once per process."""
    state = request.app.state
    cache = getattr(state, "demo_sites", None)
    if cache is None:
        cache = await run_in_threadpool(sites_by_name, services(request).engine, DEMO_SITES.values())
        if len(cache) < len(DEMO_SITES):
            return None
        state.demo_sites = cache
    return cache[DEMO_SITES[section]]


async def _snapshot(request: Request, section: str):
    site = await _site(request, section)
    if site is None:
        return None, None
    return site, await run_in_threadpool(services(request).catalog.snapshot, site[0])


NOT_SET_UP = Response("The demo is not set up: run `make demo` (or `upnext demo`).", status_code=503,
                      media_type="text/plain")


async def _render(request: Request, section: str, template: str, **context) -> Response:
    site, snap = await _snapshot(request, section)
    if site is None:
        return NOT_SET_UP
    return templates.TemplateResponse(request, template, {"key": site[1], "items": list(snap.items.values()),
                                                          "snapshot": snap, **context},
                                      headers={"Content-Security-Policy": CSP})


async def index(request: Request) -> Response:
    return await _render(request, "shop", "index.html")


async def shop_home(request: Request) -> Response:
    return await _render(request, "shop", "shop_home.html")


async def shop_category(request: Request) -> Response:
    return await _render(request, "shop", "shop_category.html", category=request.path_params["category"])


async def shop_product(request: Request) -> Response:
    site, snap = await _snapshot(request, "shop")
    if site is None:
        return NOT_SET_UP
    item = snap.get(request.path_params["item_id"])
    if item is None:
        return Response("No such product.", status_code=404, media_type="text/plain")
    return await _render(request, "shop", "shop_product.html", item=item)


async def shop_cart(request: Request) -> Response:
    return await _render(request, "shop", "shop_cart.html")


async def video_home(request: Request) -> Response:
    return await _render(request, "video", "video_home.html")


async def video_watch(request: Request) -> Response:
    site, snap = await _snapshot(request, "video")
    if site is None:
        return NOT_SET_UP
    item = snap.get(request.path_params["item_id"])
    if item is None:
        return Response("No such video.", status_code=404, media_type="text/plain")
    demo = _demo_items().get(item.id)
    duration = demo.attributes["duration_s"] if demo else 600
    return await _render(request, "video", "video_watch.html", item=item, duration=duration)


async def image(request: Request) -> Response:
    item = _demo_items().get(request.path_params["item_id"])
    if item is None:
        return Response(status_code=404)
    return Response(item_svg(item), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


def routes() -> list:
    return [
        Route("/demo", lambda request: RedirectResponse("/demo/")),
        Route("/demo/", index),
        Route("/demo/shop/", shop_home),
        Route("/demo/shop/c/{category}", shop_category),
        Route("/demo/shop/p/{item_id}", shop_product),
        Route("/demo/shop/cart", shop_cart),
        Route("/demo/video/", video_home),
        Route("/demo/video/watch/{item_id}", video_watch),
        Route("/demo/img/{item_id}.svg", image),
        Mount("/demo/assets", StaticFiles(directory=str(DEMO_DIR / "assets")), name="demo-assets"),
    ]
