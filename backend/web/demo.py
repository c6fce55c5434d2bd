"""The demo shop and video site (``/demo/...``): server-rendered pages of the demo site's catalogue, each with
the widget snippet and its placements, exactly as a real site would integrate Upnext."""
from __future__ import annotations

import functools
from urllib.parse import quote

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from backend.demo.catalog import demo_catalog
from backend.demo.images import item_svg
from backend.settings import REPO_ROOT
from backend.store.models import Site
from backend.web.http import services

DEMO_DIR = REPO_ROOT / "static" / "demo"
DEMO_SITE = "demo"
templates = Jinja2Templates(directory=str(DEMO_DIR / "templates"))
templates.env.filters["urlquote"] = lambda s: quote(str(s), safe="")


@functools.cache
def _demo_items() -> dict:
    return {it.id: it for it in demo_catalog()}


async def _site(request: Request) -> tuple[int, str] | None:
    """(site id, publishable key) of the demo site, looked up once per process."""
    state = request.app.state
    if getattr(state, "demo_site", None) is None:
        engine = services(request).engine

        def lookup():
            with engine.connect() as conn:
                return conn.execute(select(Site.id, Site.publishable_key).where(Site.name == DEMO_SITE)).first()

        row = await run_in_threadpool(lookup)
        if row is None:
            return None
        state.demo_site = (row.id, row.publishable_key)
    return state.demo_site


async def _render(request: Request, template: str, **context) -> Response:
    site = await _site(request)
    if site is None:
        return Response("The demo is not set up: run `make demo` (or `upnext demo`).", status_code=503,
                        media_type="text/plain")
    snapshot = await run_in_threadpool(services(request).catalog.snapshot, site[0])
    items = [m for m in snapshot.items.values()]
    return templates.TemplateResponse(request, template, {"key": site[1], "items": items, **context,
                                                          "snapshot": snapshot})


def _kind(meta) -> str:
    return "video" if meta.id.startswith("V-") else "product"


async def index(request: Request) -> Response:
    return await _render(request, "index.html")


async def shop_home(request: Request) -> Response:
    return await _render(request, "shop_home.html")


async def shop_category(request: Request) -> Response:
    return await _render(request, "shop_category.html", category=request.path_params["category"])


async def shop_product(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return await _render(request, "index.html")
    snap = await run_in_threadpool(services(request).catalog.snapshot, site[0])
    item = snap.get(request.path_params["item_id"])
    if item is None or _kind(item) != "product":
        return Response("No such product.", status_code=404, media_type="text/plain")
    return await _render(request, "shop_product.html", item=item)


async def shop_cart(request: Request) -> Response:
    return await _render(request, "shop_cart.html")


async def video_home(request: Request) -> Response:
    return await _render(request, "video_home.html")


async def video_watch(request: Request) -> Response:
    site = await _site(request)
    if site is None:
        return await _render(request, "index.html")
    snap = await run_in_threadpool(services(request).catalog.snapshot, site[0])
    item = snap.get(request.path_params["item_id"])
    if item is None or _kind(item) != "video":
        return Response("No such video.", status_code=404, media_type="text/plain")
    demo = _demo_items().get(item.id)
    duration = demo.attributes["duration_s"] if demo else 600
    return await _render(request, "video_watch.html", item=item, duration=duration)


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
