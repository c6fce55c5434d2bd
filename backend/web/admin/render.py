"""Rendering of the admin pages: the Jinja2 environment (autoescaped), the security headers every admin
response carries, the notices shown after a redirect, and the current site of per-site pages."""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from backend.store.sites import list_sites
from backend.web.admin.nav import SERVER_PAGES, SITE_PAGES
from backend.web.http import services

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))   # autoescape on for .html

# No inline script or style anywhere in the admin: the policy allows the server's own files only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
       "connect-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; frame-ancestors {ancestors}")

# Messages shown after a redirect, chosen by code (no text travels in the URL); ``subject`` is escaped.
NOTICES = {
    "logged-out": "You are logged out.",
    "password-set": "The admin password is set. Every other browser was logged out.",
    "placement-saved": "Placement saved.",
    "placement-deleted": "Placement deleted.",
    "origins-saved": "Allowed origins saved.",
    "site-created": "Site created. Copy its secret key now: it is shown only once.",
    "availability-saved": "Availability changed.",
    "run-started": "Training run started.",
    "tuning-started": "Tuning run started: its best parameters become the scheduled retraining's.",
    "run-cancelled": "Cancel requested.",
    "promoted": "Model promoted: every server process serves it within seconds.",
    "rolled-back": "Rolled back to the previous model.",
    "schedule-saved": "Retraining schedule saved.",
    "settings-saved": "Settings saved: every server process applies them within seconds.",
    "experiment-created": "Experiment created as a draft: start it when ready.",
    "experiment-start": "Experiment running: every server process assigns its arms within seconds.",
    "experiment-pause": "Experiment paused: the placement is served by its own settings meanwhile.",
    "experiment-stop": "Experiment stopped.",
    "experiment-deleted": "Draft deleted.",
}


def headers(*, frameable: bool = False) -> dict[str, str]:
    return {"Content-Security-Policy": CSP.format(ancestors="'self'" if frameable else "'none'"),
            "X-Frame-Options": "SAMEORIGIN" if frameable else "DENY",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin"}


def page(request: Request, template: str, context: dict | None = None, *, status: int = 200,
         frameable: bool = False) -> Response:
    ctx = {"admin": getattr(request.state, "admin", None), "site_pages": SITE_PAGES,
           "server_pages": SERVER_PAGES, "notice": NOTICES.get(request.query_params.get("notice", "")),
           "notice_subject": request.query_params.get("subject", "")[:200]}
    ctx.update(context or {})
    response = templates.TemplateResponse(request, template, ctx, status_code=status)
    response.headers.update(headers(frameable=frameable))
    return response


def redirect(url: str, notice: str | None = None, subject: str | None = None, *, anchor: str = "",
             **params) -> Response:
    query = {k: v for k, v in {"notice": notice, "subject": subject, **params}.items() if v is not None}
    target = url + ("?" + urlencode(query) if query else "") + (f"#{anchor}" if anchor else "")
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, "error.html", {"title": title, "message": message}, status=status)


async def all_sites(request: Request) -> list[dict]:
    return await run_in_threadpool(list_sites, services(request).engine)


async def current_site(request: Request) -> tuple[dict | None, list[dict]]:
    """(the site named by the path's ``site_id``, or None; all sites, for the switcher)."""
    sites = await all_sites(request)
    wanted = request.path_params.get("site_id")
    return next((s for s in sites if s["id"] == wanted), None), sites


def no_such_site(request: Request) -> Response:
    return error_page(request, 404, "No such site", "That site does not exist (any more).")


async def site_or_404(request: Request) -> tuple[dict | None, list[dict], Response | None]:
    """``current_site`` with the 404 page to return when the path names no site: (site, sites, None) or
    (None, sites, the 404 page)."""
    site, sites = await current_site(request)
    return site, sites, (None if site else no_such_site(request))


def site_url(site: dict, path: str = "") -> str:
    return f"/admin/sites/{site['id']}/{path}"


# ------------------------------------------------------------------------------------------ template filters

def _time(ms: int | float | None) -> str:
    if not isinstance(ms, (int, float)):
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _day(seconds: float | None) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _num(x, digits: int = 4) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool) or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}f}"


def _pct(x) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "–"


def _duration(ms) -> str:
    if not isinstance(ms, (int, float)):
        return "–"
    s = int(ms / 1000)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


templates.env.filters.update(time=_time, day=_day, num=_num, pct=_pct, duration=_duration)
templates.env.globals["site_url"] = site_url
