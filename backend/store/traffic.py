"""Figures of the admin overview, computed from the store so that they cover every server process:
events per minute, active sessions, recommendation requests per minute, fallback share per placement. The
latency percentile comes from this process's histogram only (``server_metrics.histogram_quantile``); the page
says so."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from backend.clock import now_ms
from backend.store.tables import Event, ServedList

MINUTE_MS = 60_000
# The site filter is written ``site_id + 0 = :site`` so that the planner reads the few rows of the time window
# through ix_events_received instead of all of the site's rows through ix_events_site_session (SQLite picks the
# latter for a plain ``site_id = :site``: about 290 ms instead of 4 ms on a million events, see
# tests/bench/bench_admin_overview.py). An index of their own, (site_id, received_ms), was measured to make
# 1000-event inserts 1.17x slower: not worth it for a page an admin opens now and then.
ACTIVE_SESSION_MS = 30 * MINUTE_MS      # the widget starts a new session after 30 idle minutes


def per_minute(engine: Engine, column, site_filter, minutes: int, now: int) -> list[int]:
    """Rows per minute over the last ``minutes`` whole minutes, oldest first (the current minute is left out,
    it is not complete)."""
    end = now - now % MINUTE_MS
    start = end - minutes * MINUTE_MS
    bucket = ((column - start) // MINUTE_MS).label("m")
    with engine.connect() as conn:
        rows = conn.execute(select(bucket, func.count()).where(site_filter, column >= start, column < end)
                            .group_by(bucket)).all()
    counts = [0] * minutes
    for m, n in rows:
        if 0 <= int(m) < minutes:
            counts[int(m)] = int(n)
    return counts


def events_per_minute(engine: Engine, site_id: int, minutes: int = 60, *, now: int | None = None) -> list[int]:
    return per_minute(engine, Event.received_ms, (Event.site_id + 0) == site_id, minutes, now or now_ms())


def requests_per_minute(engine: Engine, site_id: int, minutes: int = 60, *, now: int | None = None) -> list[int]:
    return per_minute(engine, ServedList.served_ms, ServedList.site_id == site_id, minutes, now or now_ms())


def active_sessions(engine: Engine, site_id: int, *, now: int | None = None) -> int:
    """Sessions with an event in the last 30 minutes."""
    since = (now or now_ms()) - ACTIVE_SESSION_MS
    with engine.connect() as conn:
        return int(conn.execute(select(func.count(func.distinct(Event.session)))
                                .where((Event.site_id + 0) == site_id, Event.received_ms >= since)).scalar_one())


@dataclass
class PlacementFallbacks:
    placement: str
    requests: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)   # reason -> answers ("none": the algorithm alone)

    @property
    def fallback_share(self) -> float:
        return 1.0 - self.by_reason.get("none", 0) / self.requests if self.requests else 0.0


def fallback_shares(engine: Engine, site_id: int, *, since_ms: int) -> list[PlacementFallbacks]:
    """Per placement: answers since ``since_ms`` and how many needed a fallback, by reason."""
    with engine.connect() as conn:
        rows = conn.execute(select(ServedList.placement, ServedList.fallback, func.count())
                            .where(ServedList.site_id == site_id, ServedList.served_ms >= since_ms)
                            .group_by(ServedList.placement, ServedList.fallback)).all()
    out: dict[str, PlacementFallbacks] = {}
    for placement, fallback, n in rows:
        entry = out.setdefault(placement, PlacementFallbacks(placement))
        reason = (fallback or "none").split(":")[0]
        entry.requests += int(n)
        entry.by_reason[reason] = entry.by_reason.get(reason, 0) + int(n)
    return sorted(out.values(), key=lambda p: -p.requests)
