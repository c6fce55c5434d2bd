"""The admin pages (``/admin/...``): server-rendered Jinja2, a little vanilla JS (static/admin/admin.js), no
inline script or style, so a strict Content-Security-Policy goes with every page. Views are split by page;
access control is in auth.py, CSRF in csrf.py, the navigation in nav.py."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from backend.settings import resource_dir
from backend.web.admin import (auth, catalog_page, experiments_page, install_page, models_page, overview_page,
                               placements_page, settings_page, simulator_page, sites_page)
from backend.web.admin.nav import SITE_PAGES
from backend.web.admin.render import all_sites, redirect, site_url

STATIC_DIR = resource_dir("static") / "admin"
FORM_MAX_BYTES = 1 << 20


@auth.admin_view
async def home(request: Request) -> Response:
    found = await all_sites(request)
    return redirect(site_url(found[0]) if found else "/admin/sites", request.query_params.get("notice"))


@auth.admin_view
async def go(request: Request) -> Response:
    """The site switcher: the same page of another site."""
    try:
        site_id = int(request.query_params.get("site", ""))
    except ValueError:
        return redirect("/admin/")
    wanted = request.query_params.get("page", "overview")
    item = next((p for p in SITE_PAGES if p.key == wanted), SITE_PAGES[0])
    return redirect(f"/admin/sites/{site_id}/{item.path}")


def _post(path: str, endpoint, *, max_body_size: int = FORM_MAX_BYTES) -> Route:
    return Route(path, endpoint, methods=["POST"], max_body_size=max_body_size)


def routes() -> list[BaseRoute]:
    s = "/sites/{site_id:int}"
    return [Mount("/admin", routes=[
        Route("/", home),
        Route("/login", auth.login, methods=["GET", "POST"], max_body_size=FORM_MAX_BYTES),
        Route("/setup", auth.setup, methods=["GET", "POST"], max_body_size=FORM_MAX_BYTES),
        _post("/logout", auth.logout),
        Route("/go", go),
        Route("/sites", sites_page.sites_page),
        _post("/sites", sites_page.create),
        _post(s + "/origins", sites_page.save_origins),
        _post(s + "/rotate", sites_page.rotate),
        Route(s + "/", overview_page.overview),
        Route(s + "/install", install_page.install_page),
        Route(s + "/install.json", install_page.install_json),
        Route(s + "/placements", placements_page.placements_page),
        _post(s + "/placements", placements_page.save),
        Route(s + "/new-placement", placements_page.edit),
        Route(s + "/placements/{name}", placements_page.edit),
        _post(s + "/placements/{name}/delete", placements_page.delete),
        Route(s + "/placements/{name}/preview", placements_page.preview),
        Route(s + "/preview-api/v1/recommendations", placements_page.preview_api),
        Route(s + "/catalog", catalog_page.catalog_page),
        _post(s + "/catalog/import", catalog_page.import_file, max_body_size=catalog_page.UPLOAD_MAX_BYTES),
        _post(s + "/catalog/availability", catalog_page.availability),
        Route(s + "/models", models_page.models_page),
        _post(s + "/models/train", models_page.train),
        _post(s + "/models/tune", models_page.tune),
        _post(s + "/models/rollback", models_page.roll_back),
        _post(s + "/models/schedule", models_page.schedule),
        _post(s + "/models/{model_id:int}/promote", models_page.promote_model),
        _post(s + "/runs/{run_id:int}/cancel", models_page.cancel),
        Route(s + "/runs/{run_id:int}.json", models_page.run_json),
        Route(s + "/experiments", experiments_page.experiments_page),
        _post(s + "/experiments", experiments_page.create),
        Route(s + "/experiments/{exp_id:int}", experiments_page.detail),
        Route(s + "/experiments/{exp_id:int}.csv", experiments_page.export_csv),
        _post(s + "/experiments/{exp_id:int}/{action:str}", experiments_page.action),
        Route(s + "/simulator", simulator_page.simulator_page),
        Route("/settings", settings_page.settings_page),
        _post("/settings", settings_page.save),
        _post("/settings/password", settings_page.change_password),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="admin-static"),
    ])]
