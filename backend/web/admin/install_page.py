"""The install check of a site (backend/install_check.py): one line per question, green, amber or red with what
to do, refreshed while the page is open (admin.js polls the JSON and reloads when a line changes)."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.clock import now_ms
from backend.install_check import install_check
from backend.web.admin.auth import admin_view
from backend.web.admin.charts import bar_chart
from backend.web.admin.overview_page import _minute_labels
from backend.web.admin.render import headers, page, site_or_404
from backend.web.http import json_response, services


async def _check(request: Request, site: dict):
    svc = services(request)
    return await run_in_threadpool(install_check, svc.engine, svc.settings, site)


@admin_view
async def install_page(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    check = await _check(request, site)
    labels = _minute_labels(now_ms(), len(check.views_per_minute))
    chart = bar_chart(check.views_per_minute, label="Views per minute, last hour",
                      tooltips=[f"{t} UTC: {v:,} views" for t, v in zip(labels, check.views_per_minute)])
    return page(request, "install.html", {"title": f"Install check · {site['name']}", "active": "install",
                                          "site": site, "all_sites": sites, "check": check, "views_chart": chart})


@admin_view
async def install_json(request: Request) -> Response:
    site, _, missing = await site_or_404(request)
    if missing:
        return missing
    check = await _check(request, site)
    return json_response({**check.as_json(), "views_per_minute": None}, headers=headers())
