"""The overview page: traffic and answers of one site over the last hour, and its live model."""
from __future__ import annotations

import datetime as dt
import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.clock import now_ms
from backend.server_metrics import histogram_quantile
from backend.store import traffic as figures
from backend.store.items import count_items
from backend.store.runs import active_run
from backend.store.trained_models import list_models
from backend.web.admin.auth import admin_view
from backend.web.admin.charts import bar_chart, stacked_bar
from backend.web.admin.render import page, site_or_404
from backend.web.http import services

MINUTES = 60
RECENT = 5          # minutes averaged for the headline rates


def _minute_labels(now: int, n: int) -> list[str]:
    end = now - now % 60_000
    return [dt.datetime.fromtimestamp((end - (n - i) * 60_000) / 1000, dt.timezone.utc).strftime("%H:%M")
            for i in range(n)]


@admin_view
async def overview(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    svc = services(request)
    engine, now = svc.engine, now_ms()

    def compute() -> dict:
        events = figures.events_per_minute(engine, site["id"], MINUTES, now=now)
        requests = figures.requests_per_minute(engine, site["id"], MINUTES, now=now)
        return {"events": events, "requests": requests,
                "active_sessions": figures.active_sessions(engine, site["id"], now=now),
                "fallbacks": figures.fallback_shares(engine, site["id"], since_ms=now - MINUTES * 60_000),
                "live": next((m for m in list_models(engine, site["id"]) if m.live), None),
                "items": count_items(engine, site["id"]), "run": active_run(engine, site["id"])}

    data = await run_in_threadpool(compute)
    labels = _minute_labels(now, MINUTES)
    p95, observed = histogram_quantile(svc.metrics, "/v1/recommendations", 0.95)
    ctx = {
        "site": site, "sites": sites, "active": "overview", "title": f"Overview of {site['name']}", **data,
        "events_per_min": sum(data["events"][-RECENT:]) / RECENT,
        "requests_per_s": sum(data["requests"][-RECENT:]) / (RECENT * 60),
        "events_chart": bar_chart(data["events"], label="Events per minute, last hour",
                                  tooltips=[f"{t} UTC: {v:,} events" for t, v in zip(labels, data["events"])]),
        "requests_chart": bar_chart(data["requests"], label="Recommendation requests per minute, last hour",
                                    tooltips=[f"{t} UTC: {v:,} requests" for t, v in zip(labels, data["requests"])]),
        "fallback_bars": {p.placement: stacked_bar(p.by_reason, label=f"answers of {p.placement} by fallback reason")
                          for p in data["fallbacks"]},
        "p95_ms": None if p95 is None else 1000 * p95, "p95_observed": observed, "pid": os.getpid(),
        "first_label": labels[0] if labels else "", "last_label": labels[-1] if labels else "",
    }
    return page(request, "overview.html", ctx)
