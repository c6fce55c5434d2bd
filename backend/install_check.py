"""The install check of a site: is the snippet sending what it should? One line per question, each green, amber
or red with what to do. The admin's install check page (live) and ``upnext doctor --site`` show the same lines.

    snippet     pages loaded the script / sent requests with the key, from which origins
    views       views arrive (per minute over the last hour, the last one)
    recs        recommendations asked and clicked in the last 24 hours
    catalogue   the catalogue has items, and the viewed item ids are in it (the share that is not, with examples)
    origins     requests refused because of their origin (with the origin, so a missing www. shows)
    model       a live model, or the sessions collected towards the first one and when it will train
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from backend.clock import now_ms
from backend.retraining.first_model import first_model_state
from backend.settings import Settings
from backend.store.db import Engine
from backend.store.install import DAY_MS, figures
from backend.store.origins import seen_origins

GREEN, AMBER, RED = "green", "amber", "red"
UNKNOWN_AMBER, UNKNOWN_RED = 0.05, 0.5      # share of viewed ids not in the catalogue
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Check:
    key: str
    title: str
    status: str                  # green | amber | red
    summary: str                 # what was found
    todo: str = ""               # what to do (empty when green)
    details: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InstallCheck:
    site: str
    checks: list[Check]
    views_per_minute: list[int]

    @property
    def status(self) -> str:
        states = {c.status for c in self.checks}
        return RED if RED in states else AMBER if AMBER in states else GREEN

    def as_json(self) -> dict:
        return {"site": self.site, "status": self.status, "checks": [c.as_json() for c in self.checks],
                "views_per_minute": self.views_per_minute}


def _ago(ms: int | None, now: int) -> str:
    if ms is None:
        return "never"
    s = max(0, (now - ms) // 1000)
    return (f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago" if s < 172800
            else f"{s // 86400} days ago")


def install_check(engine: Engine, settings: Settings, site: dict, *, now: int | None = None) -> InstallCheck:
    """``site``: a row of ``store.sites.list_sites``."""
    now = now_ms() if now is None else now
    f = figures(engine, site["id"], cap=max(1, settings.first_model_sessions), now=now)
    origins = seen_origins(engine, site["id"])
    checks = [_snippet(origins, site, now), _views(f, now), _recs(f, now), _catalogue(f),
              _refused(origins, site, now), _model(engine, settings, site["id"], f)]
    return InstallCheck(site["name"], checks, f.views_per_minute)


def _snippet(origins, site, now) -> Check:
    used = [o for o in origins if o.kind != "refused"]
    by_origin: dict[str, int] = {}
    for o in used:
        by_origin[o.origin] = max(by_origin.get(o.origin, 0), o.last_ms)
    details = [f"{origin} (last {_ago(last, now)})" for origin, last in sorted(by_origin.items(), key=lambda x: -x[1])]
    if not by_origin:
        refused = any(o.kind == "refused" for o in origins)
        return Check("snippet", "Snippet loaded", RED, "no page has loaded the script or used the key yet",
                     "the origin the pages use is refused: see below" if refused else
                     "paste the script tag of Sites and keys into your pages and open one")
    last = max(by_origin.values())
    if now - last > DAY_MS:
        return Check("snippet", "Snippet loaded", AMBER, f"last used {_ago(last, now)}",
                     "nothing in the last 24 hours: is the snippet still on the pages?", details)
    return Check("snippet", "Snippet loaded", GREEN, f"used from {len(by_origin)} origin(s)", "", details)


def _views(f, now) -> Check:
    hour = f.views_hour
    rate = f" ({hour / 60:.1f}/min)" if hour >= 60 else ""
    summary = f"{hour} in the last hour{rate}, last {_ago(f.last_view_ms, now)}"
    if f.last_view_ms is None:
        if f.requests_day or f.last_event_ms:
            return Check("views", "Views arrive", RED, "carousels are asked for but no view was ever sent",
                         "give each product or video page its item: a data-item on its placement, "
                         "<meta name=\"upnext:item\">, or upnext('view', id) (README, Integrating)")
        return Check("views", "Views arrive", RED, "no view yet", "open a product page with the snippet")
    if now - f.last_view_ms > HOUR_MS:
        return Check("views", "Views arrive", AMBER, summary,
                     "no view in the last hour: normal at night, else check the pages still carry the snippet")
    return Check("views", "Views arrive", GREEN, summary)


def _recs(f, now) -> Check:
    clicks = f.day_counts.get("rec_click", 0)
    impressions = f.day_counts.get("rec_impression", 0)
    summary = (f"{f.requests_day} asked, {impressions} seen, {clicks} clicked in the last 24 hours "
               f"(last asked {_ago(f.last_request_ms, now)})")
    if not f.requests_day:
        return Check("recs", "Recommendations asked and clicked", RED, summary,
                     "add a placement (<div data-upnext=\"product-page\">) to a page")
    if not impressions or not clicks:
        return Check("recs", "Recommendations asked and clicked", AMBER, summary,
                     "no impression yet: is the carousel visible (not hidden by the page's CSS)?" if not impressions
                     else "no click yet: wait for visitors (clicks come with traffic)")
    return Check("recs", "Recommendations asked and clicked", GREEN, summary)


def _catalogue(f) -> Check:
    if f.catalogue_items == 0:
        return Check("catalogue", "Viewed items are in the catalogue", RED, "the catalogue is empty",
                     "import it: upnext import-items FILE --site NAME, the Catalogue page, or PUT /v1/items")
    if not f.viewed_items:
        return Check("catalogue", "Viewed items are in the catalogue", AMBER,
                     f"{f.catalogue_items} items; no view to compare yet", "wait for views")
    share = len(f.unknown_items) / f.viewed_items
    summary = (f"{share:.0%} of {f.viewed_items} recently viewed item ids are not in the catalogue "
               f"({f.catalogue_items} items)")
    examples = [f"unknown: {i}" for i in f.unknown_items[:5]]
    if share >= UNKNOWN_RED:
        return Check("catalogue", "Viewed items are in the catalogue", RED, summary,
                     "the pages' item ids differ from the catalogue's: use the same ids (SKU, not the URL or title)",
                     examples)
    if share >= UNKNOWN_AMBER:
        return Check("catalogue", "Viewed items are in the catalogue", AMBER, summary,
                     "import the missing items (new products?) or fix their ids on the pages", examples)
    return Check("catalogue", "Viewed items are in the catalogue", GREEN, summary, "", examples)


def _refused(origins, site, now) -> Check:
    refused = [o for o in origins if o.kind == "refused" and now - o.last_ms <= DAY_MS]
    if not refused:
        return Check("origins", "No refused origins", GREEN,
                     f"allowed: {', '.join(site['allowed_origins']) or 'none'}")
    return Check("origins", "No refused origins", RED,
                 f"{sum(o.count for o in refused)} requests refused in the last 24 hours from "
                 f"{', '.join(o.origin for o in refused[:5])}",
                 "if it is your site, add it on Sites and keys exactly as shown (scheme, www., port)",
                 [f"{o.origin}: {o.count} requests, last {_ago(o.last_ms, now)}" for o in refused])


def _model(engine, settings, site_id, f) -> Check:
    """Collecting sessions is how a new site starts, not a fault: green, with when the model will come."""
    state = first_model_state(engine, settings, site_id)
    title = "Model"
    if state.state in ("live", "collecting", "due", "training"):
        note = {"collecting": " (until then product pages show items similar by their catalogue features, other "
                              "carousels the newest items)",
                "training": " (it goes live when the run succeeds: Models page)"}.get(state.state, "")
        return Check("model", title, GREEN, state.message + note)
    if state.state == "retry_wait":
        return Check("model", title, RED, state.message, "see the run's log on the Models page")
    return Check("model", title, AMBER, state.message, "train a model on the Models page")
