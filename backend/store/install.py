"""The install check's figures from the store (backend/install_check.py judges them): views per minute and the
last one, recommendations asked and clicked, viewed item ids the catalogue does not know, sessions collected.
Every query reads a bounded window or stops early: the admin page runs them all on each refresh."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, func, select

from backend.clock import now_ms
from backend.store.db import HEARTBEAT
from backend.store.tables import VIEW_LIKE, AppSetting, Event, Item, ServedList, TrainingRun
from backend.store.traffic import MINUTE_MS, per_minute

DAY_MS = 24 * 60 * MINUTE_MS
RECENT_VIEWED = 1000          # distinct item ids of the newest views checked against the catalogue


@dataclass(frozen=True)
class Figures:
    views_per_minute: list[int]          # the last 60 whole minutes, oldest first
    views_hour: int                      # views of the last 60 minutes, the current one included
    last_view_ms: int | None
    last_event_ms: int | None
    day_counts: dict[str, int]           # events of the last 24 hours by type
    requests_day: int                    # recommendation answers of the last 24 hours
    last_request_ms: int | None
    viewed_items: int                    # distinct item ids among the newest views
    unknown_items: list[str]             # those the catalogue does not have
    catalogue_items: int
    sessions: int                        # sessions with two or more view-like events (capped at ``cap``)


def figures(engine: Engine, site_id: int, *, cap: int, now: int | None = None) -> Figures:
    now = now_ms() if now is None else now
    site = (Event.site_id + 0) == site_id          # through ix_events_received (see store/traffic.py)
    with engine.connect() as conn:
        last_view = conn.execute(select(Event.received_ms).where(site, Event.type == "view")
                                 .order_by(Event.received_ms.desc()).limit(1)).scalar()
        last_event = conn.execute(select(Event.received_ms).where(site).order_by(Event.received_ms.desc())
                                  .limit(1)).scalar()
        views_hour = conn.execute(select(func.count()).where(site, Event.type == "view",
                                                             Event.received_ms >= now - 60 * MINUTE_MS)).scalar_one()
        day = dict(conn.execute(select(Event.type, func.count()).where(site, Event.received_ms >= now - DAY_MS)
                                .group_by(Event.type)).all())
        requests = conn.execute(select(func.count()).where(ServedList.site_id == site_id,
                                                           ServedList.served_ms >= now - DAY_MS)).scalar_one()
        last_request = conn.execute(select(func.max(ServedList.served_ms))
                                    .where(ServedList.site_id == site_id)).scalar()
        newest = select(Event.item).where(site, Event.type == "view").order_by(Event.received_ms.desc()) \
            .limit(20 * RECENT_VIEWED).subquery()
        viewed = [r[0] for r in conn.execute(select(newest.c.item).distinct().limit(RECENT_VIEWED)).all()]
        known: set[str] = set()
        for i in range(0, len(viewed), 500):
            known.update(r[0] for r in conn.execute(select(Item.id).where(Item.site_id == site_id,
                                                                          Item.id.in_(viewed[i:i + 500]))).all())
        catalogue = conn.execute(select(func.count()).select_from(Item).where(Item.site_id == site_id)).scalar_one()
    views = per_minute(engine, Event.received_ms, and_(site, Event.type == "view"), 60, now)
    return Figures(views_per_minute=views, views_hour=int(views_hour),
                   last_view_ms=last_view, last_event_ms=last_event, day_counts={k: int(v) for k, v in day.items()},
                   requests_day=int(requests), last_request_ms=last_request, viewed_items=len(viewed),
                   unknown_items=[i for i in viewed if i not in known], catalogue_items=int(catalogue),
                   sessions=count_sessions(engine, site_id, cap))


def count_sessions(engine: Engine, site_id: int, cap: int) -> int:
    """Sessions with two or more view-like events (what training can learn from), counted up to ``cap``."""
    long_enough = select(Event.session).where(Event.site_id == site_id, Event.type.in_(sorted(VIEW_LIKE))) \
        .group_by(Event.session).having(func.count() >= 2).limit(cap).subquery()
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(long_enough)).scalar_one())


def last_first_model_run(engine: Engine, site_id: int):
    """(status, error, finished_ms, id) of the site's newest run started for its first model, or None."""
    with engine.connect() as conn:
        return conn.execute(select(TrainingRun.status, TrainingRun.error, TrainingRun.finished_ms, TrainingRun.id)
                            .where(TrainingRun.site_id == site_id, TrainingRun.trigger == "first_model")
                            .order_by(TrainingRun.id.desc()).limit(1)).first()


def server_heartbeat_ms(engine: Engine) -> int | None:
    """When a server process last committed its health check's heartbeat (its own clock), or None."""
    with engine.connect() as conn:
        return conn.execute(select(AppSetting.updated_ms).where(AppSetting.name == HEARTBEAT)).scalar()
