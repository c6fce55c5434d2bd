"""Placements: list, create, edit and delete, with a live preview of the rendered widget.

The preview page is served by Upnext itself and embeds /w.js with the site's publishable key, like a site's
page would. Its recommendation requests are same-origin GETs, which browsers send without an Origin header, so
the API answers them whatever the site's allowed origins are (as it answers server-to-server requests). Its
events are POSTs that carry the server's own origin: the API refuses them (403) unless that origin is among the
site's allowed origins, so previews do not add visits to the training data.
"""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.algorithms import ALGORITHMS, LABELS
from backend.serving.recommender import RecRequest, explain, recommend
from backend.store.placement_rules import SYNTAX, RuleError, rule_from_text
from backend.store.placements import (MAX_N, PAGE_KINDS, PlacementConfig, PlacementError, delete_placement,
                                      list_placements, save_placement)
from backend.web.admin.auth import admin_view
from backend.web.admin.render import error_page, page, redirect, site_or_404, site_url
from backend.web.http import problem, services
from backend.web.recommend import answer

FALLBACK_CHOICES = {"item_to_item,popular": "item-to-item, then popular",
                    "popular,item_to_item": "popular, then item-to-item",
                    "item_to_item": "item-to-item only", "popular": "popular only",
                    "": "none (the newest catalogue items fill the list)"}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def _form_config(form) -> PlacementConfig:
    """The settings of a submitted form; PlacementError lists every problem (one per line of the message)."""
    problems: list[tuple[str, str]] = []
    try:
        n = int(str(form.get("n", "")).strip())
    except ValueError:
        n = 0
        problems.append(("n", f"item count must be a whole number between 1 and {MAX_N}"))
    fallback = str(form.get("fallback", ""))
    if fallback not in FALLBACK_CHOICES:
        problems.append(("fallback", "choose one of the listed orders"))
        fallback = ""
    diversity_text = str(form.get("diversity", "") or "0").strip()
    try:
        diversity = float(diversity_text)
    except ValueError:
        diversity = -1.0
    cap_text = str(form.get("max_per_category", "")).strip()
    cap = int(cap_text) if cap_text.isdigit() else (None if not cap_text else -1)
    pinned = []
    for line in _lines(str(form.get("pinned", ""))):
        item, at, pos = line.rpartition("@")
        if not at or not pos.strip().isdigit() or not item.strip():
            problems.append(("pinned", f"{line[:80]!r}: write one item per line as ITEM @ POSITION, e.g. SKU-1 @ 1"))
        else:
            pinned.append((item.strip(), int(pos.strip())))
    rules = []
    for line in _lines(str(form.get("rules", ""))):
        try:
            rules.append(rule_from_text(line))
        except RuleError as exc:
            problems.append(("rules", str(exc)))
    cfg = PlacementConfig(name=str(form.get("name", "")).strip(), page_kind=str(form.get("page_kind", "")),
                          algorithm=str(form.get("algorithm", "")), n=n, title=str(form.get("title", "")).strip(),
                          exclude_seen="exclude_seen" in form, only_available="only_available" in form,
                          same_category="same_category" in form,
                          fallback=tuple(f for f in fallback.split(",") if f), diversity=diversity,
                          max_per_category=cap, pinned=tuple(pinned),
                          blocked=tuple(_lines(str(form.get("blocked", "")).replace(",", "\n"))), rules=tuple(rules))
    known = {f for f, _ in problems}
    problems += [(f, m) for f, m in cfg.problems() if f not in known]
    if problems:
        raise PlacementError("\n".join(f"{_LABELS.get(f, f)}: {m}" if _LABELS.get(f, f) else m for f, m in problems),
                             problems)
    return cfg.validated()


_LABELS = {"n": "", "max_per_category": "at most per category", "pinned": "pinned items",
           "blocked": "blocked items", "page_kind": "page kind"}


def _form_text(cfg: PlacementConfig) -> dict:
    """The text areas of the form for ``cfg``."""
    return {"pinned": "\n".join(f"{i} @ {p}" for i, p in cfg.pinned), "blocked": "\n".join(cfg.blocked),
            "rules": "\n".join(r.text() for r in cfg.rules),
            "max_per_category": "" if cfg.max_per_category is None else str(cfg.max_per_category),
            "diversity": f"{cfg.diversity:g}"}


def _choices() -> dict:
    return {"page_kinds": PAGE_KINDS, "algorithms": [(a.name, a.label) for a in ALGORITHMS],
            "fallbacks": FALLBACK_CHOICES, "max_n": MAX_N, "rule_syntax": SYNTAX}


@admin_view
async def placements_page(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    configs = await run_in_threadpool(list_placements, services(request).engine, site["id"])
    return page(request, "placements.html", {"title": f"Placements of {site['name']}", "site": site, "sites": sites,
                                             "active": "placements", "placements": configs,
                                             "labels": LABELS})


@admin_view
async def edit(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    name = request.path_params.get("name")
    cfg = PlacementConfig(name="")
    if name is not None:
        configs = await run_in_threadpool(list_placements, services(request).engine, site["id"])
        cfg = next((c for c in configs if c.name == name), None)
        if cfg is None:
            return error_page(request, 404, "No such placement", "That placement does not exist (any more).")
    steps = None
    if name is not None and cfg.controlled:
        steps = await run_in_threadpool(_preview_steps, services(request), site["id"], cfg,
                                        request.query_params.get("item", "")[:256] or None)
    return _form_page(request, site, sites, cfg, existing=name is not None, steps=steps)


def _preview_steps(svc, site_id: int, cfg: PlacementConfig, item: str | None) -> list[dict]:
    """What the placement's controls do to the preview's list (no session: the page of ``item``)."""
    req = RecRequest(site_id=site_id, placement=cfg.name, item=item)
    model, snap = svc.models.get(site_id), svc.catalog.snapshot(site_id)
    steps = explain(req, cfg, model, snap, recommend(req, cfg, model, snap))
    for s in steps:
        meta = snap.get(s["item"])
        s["title"] = meta.title if meta is not None else ""
    return steps


def _form_page(request, site, sites, cfg: PlacementConfig, *, existing: bool, error: str | None = None,
               status: int = 200, text: dict | None = None, steps: list | None = None) -> Response:
    return page(request, "placement_form.html", {
        "title": f"Placement {cfg.name}" if existing else "New placement", "site": site, "sites": sites,
        "active": "placements", "cfg": cfg, "existing": existing, "error": error,
        "fallback_value": ",".join(cfg.fallback), "preview_item": request.query_params.get("item", "")[:256],
        "text": text or _form_text(cfg), "steps": steps, **_choices()}, status=status)


@admin_view
async def save(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form = request.state.form
    existing = form.get("existing") == "1"
    try:
        cfg = _form_config(form)
    except PlacementError as exc:
        draft = PlacementConfig(name=str(form.get("name", ""))[:64], title=str(form.get("title", ""))[:200])
        text = {k: str(form.get(k, ""))[:20000] for k in ("pinned", "blocked", "rules", "max_per_category",
                                                          "diversity")}
        return _form_page(request, site, sites, draft, existing=existing, error=str(exc), status=400, text=text)
    engine = services(request).engine
    if not existing:
        taken = {c.name for c in await run_in_threadpool(list_placements, engine, site["id"])}
        if cfg.name in taken:
            return _form_page(request, site, sites, cfg, existing=False, status=400,
                              error=f"a placement named {cfg.name} exists already: edit it instead")
    await run_in_threadpool(save_placement, engine, site["id"], cfg)
    services(request).placements.invalidate(site["id"])
    return redirect(site_url(site, f"placements/{cfg.name}"), "placement-saved", cfg.name)


@admin_view
async def delete(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    name = request.path_params["name"]
    await run_in_threadpool(delete_placement, services(request).engine, site["id"], name)
    services(request).placements.invalidate(site["id"])
    return redirect(site_url(site, "placements"), "placement-deleted", name)


async def preview_api(request: Request) -> Response:
    """``/v1/recommendations`` for the preview's widget (its ``data-api``): the same answers, recorded nowhere (no
    served list, no metrics), so previews never count as traffic. The widget sends no cookie (``credentials:
    'omit'``), so this cannot ask for the admin session: like the public endpoint it needs the site's publishable
    key (and answers what anyone holding the key may ask there); not being counted is all it adds."""
    svc = services(request)
    site = svc.sites.by_publishable_key(request.query_params.get("key", ""))
    if site is None or site.id != request.path_params["site_id"]:
        return problem(401, "unknown key: the preview sends its site's publishable key (pk_...)")
    return await answer(request, site.id, {"Cache-Control": "no-store"}, record=False)


@admin_view
async def preview(request: Request) -> Response:
    """The placement as the widget renders it (embedded in the edit page; see the module docstring)."""
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    q = request.query_params
    name = request.path_params["name"]
    n = q.get("n", "")
    if not (n.isdigit() and 1 <= int(n) <= MAX_N):
        # The widget asks for data-n items (default 8) whatever the placement says, so the preview passes the
        # placement's own count to show what was configured.
        configs = await run_in_threadpool(list_placements, services(request).engine, site["id"])
        n = str(next((c.n for c in configs if c.name == name), ""))
    return page(request, "preview.html", {
        "site": site, "name": name, "item": q.get("item", "")[:256], "n": n,
        "heading": q.get("title", "")[:200]}, frameable=True)
