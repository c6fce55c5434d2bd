"""Sites and keys: each site's allowed origins (and whether events must come from them), its publishable key and the snippet of each placement; create a
site; rotate its keys (the new secret key is shown once, on the answer to the rotation, and never stored)."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.snippets import snippets
from backend.store.placements import list_placements
from backend.store.sites import SiteError, create_site, list_sites, rotate_keys, set_origins, set_require_origin
from backend.web.admin.auth import admin_view
from backend.web.admin.render import no_such_site, page, redirect
from backend.web.http import services


def _origins(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


async def _render(request: Request, *, new_keys=None, errors: dict | None = None, status: int = 200,
                  form: dict | None = None) -> Response:
    engine = services(request).engine

    def load():
        sites = list_sites(engine)
        return sites, {s["id"]: list_placements(engine, s["id"]) for s in sites}

    sites, placements = await run_in_threadpool(load)
    base_url = str(request.base_url).rstrip("/")
    return page(request, "sites.html", {
        "title": "Sites and keys", "active": "sites", "sites": sites, "all_sites": sites, "placements": placements,
        "pages": {s["id"]: snippets(base_url, s["publishable_key"]) for s in sites},   # the README's, keyed
        "base_url": base_url, "new_keys": new_keys, "errors": errors or {},
        "form": form or {}}, status=status)


@admin_view
async def sites_page(request: Request) -> Response:
    return await _render(request)


@admin_view
async def create(request: Request) -> Response:
    form = request.state.form
    name, origins = str(form.get("name", "")).strip(), str(form.get("origins", ""))
    try:
        keys = await run_in_threadpool(create_site, services(request).engine, name, _origins(origins))
    except SiteError as exc:
        return await _render(request, errors={"create": str(exc)}, status=400,
                             form={"name": name, "origins": origins})
    services(request).sites.reload()
    return await _render(request, new_keys=keys)


async def _site_name(request: Request) -> str | None:
    site_id = request.path_params["site_id"]
    sites = await run_in_threadpool(list_sites, services(request).engine)
    return next((s["name"] for s in sites if s["id"] == site_id), None)


@admin_view
async def save_origins(request: Request) -> Response:
    name = await _site_name(request)
    if name is None:
        return no_such_site(request)
    form, engine = request.state.form, services(request).engine

    def save():
        set_origins(engine, name, _origins(str(form.get("origins", ""))))
        set_require_origin(engine, name, form.get("require_origin") == "on")   # an unticked box is not sent

    try:
        await run_in_threadpool(save)
    except SiteError as exc:
        return await _render(request, errors={request.path_params["site_id"]: str(exc)}, status=400)
    services(request).sites.reload()
    return redirect("/admin/sites", "origins-saved", name)


@admin_view
async def rotate(request: Request) -> Response:
    name = await _site_name(request)
    if name is None:
        return no_such_site(request)
    keys = await run_in_threadpool(rotate_keys, services(request).engine, name)
    services(request).sites.reload()
    return await _render(request, new_keys=keys)
