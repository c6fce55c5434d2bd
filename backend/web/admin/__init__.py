"""The admin pages (``/admin/...``): server-rendered Jinja2, a little vanilla JS (static/admin/admin.js), no
inline script or style, so a strict Content-Security-Policy goes with every page. Views are split by page;
access control is in auth.py, CSRF in csrf.py, the navigation in nav.py."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from backend.settings import REPO_ROOT
from backend.web.admin import (auth, catalog, experiments, models, overview, placements, settings_page, simulator,
                               sites)
from backend.web.admin.nav import SITE_PAGES
from backend.web.admin.render import all_sites, redirect, site_url

STATIC_DIR = REPO_ROOT / "static" / "admin"
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
        Route("/sites", sites.sites_page),
        _post("/sites", sites.create),
        _post(s + "/origins", sites.save_origins),
        _post(s + "/rotate", sites.rotate),
        Route(s + "/", overview.overview),
        Route(s + "/placements", placements.placements_page),
        _post(s + "/placements", placements.save),
        Route(s + "/new-placement", placements.edit),
        Route(s + "/placements/{name}", placements.edit),
        _post(s + "/placements/{name}/delete", placements.delete),
        Route(s + "/placements/{name}/preview", placements.preview),
        Route(s + "/preview-api/v1/recommendations", placements.preview_api),
        Route(s + "/catalog", catalog.catalog_page),
        _post(s + "/catalog/import", catalog.import_file, max_body_size=catalog.UPLOAD_MAX_BYTES),
        _post(s + "/catalog/availability", catalog.availability),
        Route(s + "/models", models.models_page),
        _post(s + "/models/train", models.train),
        _post(s + "/models/rollback", models.roll_back),
        _post(s + "/models/schedule", models.schedule),
        _post(s + "/models/{model_id:int}/promote", models.promote_model),
        _post(s + "/runs/{run_id:int}/cancel", models.cancel),
        Route(s + "/runs/{run_id:int}.json", models.run_json),
        Route(s + "/experiments", experiments.experiments_page),
        _post(s + "/experiments", experiments.create),
        Route(s + "/experiments/{exp_id:int}", experiments.detail),
        Route(s + "/experiments/{exp_id:int}.csv", experiments.export_csv),
        _post(s + "/experiments/{exp_id:int}/{action:str}", experiments.action),
        Route(s + "/simulator", simulator.simulator_page),
        Route("/settings", settings_page.settings_page),
        _post("/settings", settings_page.save),
        _post("/settings/password", settings_page.change_password),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="admin-static"),
    ])]
