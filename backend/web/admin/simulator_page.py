"""The session simulator: click catalogue items as a pretend visitor and see what every placement would answer,
with its fallback reason, what each filter removed and which merchandising control (diversity, category cap, pins,
blocked items, rules) removed, brought in or moved which item.

Answers come from the recommender in this process (the same code as GET /v1/recommendations), without a session
id: nothing is stored, no served list is recorded and no session state is kept. The pretend visit lives in the
page's URL (``h`` repeated, oldest first), like the widget's sessionStorage history.
"""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.item_ids import valid_id
from backend.serving.recommender import RecRequest, explain, recommend
from backend.store.item_search import search_items
from backend.store.placements import default_placement, list_placements
from backend.web.admin.auth import admin_view
from backend.web.admin.render import page, site_or_404, site_url
from backend.web.http import services

HISTORY_KEPT = 20       # the widget's window
CHOICES = 40            # catalogue items offered to click


def _link(base: str, history: list[str], q: str, home: bool) -> str:
    params = [("h", h) for h in history] + ([("q", q)] if q else []) + ([("on", "home")] if home else [])
    return base + ("?" + urlencode(params) if params else "")


@admin_view
async def simulator_page(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    svc = services(request)
    qp = request.query_params
    history = [h for h in qp.getlist("h") if valid_id(h)][-HISTORY_KEPT:]
    q, home = qp.get("q", "")[:200], qp.get("on") == "home"

    def answers():
        configs = list_placements(svc.engine, site["id"]) or [default_placement("product-page")]
        model, snap = svc.models.get(site["id"]), svc.catalog.snapshot(site["id"])
        item = None if home or not history else history[-1]
        out = []
        for cfg in configs:
            req = RecRequest(site_id=site["id"], placement=cfg.name, item=item, history=tuple(history))
            ans = recommend(req, cfg, model, snap)
            reason, _, filler = (ans.fallback or "").partition(":")
            out.append({"cfg": cfg, "answer": ans, "reason": reason or None, "filler": filler or None,
                        "entries": [(i, snap.get(i)) for i in ans.item_ids],
                        "steps": explain(req, cfg, model, snap, ans)})
        choices, _ = search_items(svc.engine, site["id"], q, limit=CHOICES)
        return out, choices, model, {h: snap.get(h) for h in history}

    results, choices, model, seen = await run_in_threadpool(answers)
    base = site_url(site, "simulator")
    return page(request, "simulator.html", {
        "title": f"Session simulator of {site['name']}", "site": site, "sites": sites, "active": "simulator",
        "history": history, "seen": seen, "results": results, "choices": choices, "q": q, "home": home,
        "model": model, "click": lambda item_id: _link(base, [*history, item_id][-HISTORY_KEPT:], q, home),
        "back": _link(base, history[:-1], q, home), "reset": _link(base, [], q, home),
        "toggle_home": _link(base, history, q, not home), "base": base})
