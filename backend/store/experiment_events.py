"""What an experiment's sessions were served and did, as stored: the experiment's served lists and the events of
its exposed sessions, for the attribution (backend/experiments/attribution.py, which states the rules)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from backend.store.experiments import ExperimentInfo
from backend.store.tables import Event, ServedList

# An experiment's lists are served once it runs, so never before it was created or started; the margin covers the
# clocks of several hosts disagreeing. The bound lets PostgreSQL skip the older days' partitions of served_lists.
CLOCK_SKEW_MS = 3_600_000


@dataclass(frozen=True)
class ExperimentTraffic:
    lists: list      # rows (rec, session, arm, served_ms): the experiment's lists with a session, by session, time
    events: list     # rows (session, type, item, rec, value, received_ms): the site's events of those sessions
    #                  from ``first_ms`` on, by session, then arrival (event id)
    first_ms: int    # the first list's served_ms (the experiment's start, or creation, while it has none)


def experiment_traffic(engine: Engine, exp: ExperimentInfo) -> ExperimentTraffic:
    """The experiment's served lists and its exposed sessions' events, read on one connection."""
    since = min(exp.created_ms, exp.started_ms or exp.created_ms) - CLOCK_SKEW_MS
    mine = (ServedList.experiment_id == exp.id, ServedList.served_ms >= since)
    with engine.connect() as conn:
        lists = conn.execute(
            select(ServedList.rec, ServedList.session, ServedList.arm, ServedList.served_ms)
            .where(*mine, ServedList.session.is_not(None))
            .order_by(ServedList.session, ServedList.served_ms)).all()
        first_ms = min((r.served_ms for r in lists), default=exp.started_ms or exp.created_ms)
        exposed = select(ServedList.session).where(*mine).distinct()
        events = conn.execute(
            select(Event.session, Event.type, Event.item, Event.rec, Event.value, Event.received_ms)
            .where(Event.site_id == exp.site_id, Event.session.in_(exposed), Event.received_ms >= first_ms)
            .order_by(Event.session, Event.id)).all()
    return ExperimentTraffic(lists, events, first_ms)
