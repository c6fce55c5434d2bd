"""Scheduled retraining: each site may retrain every N hours with a parameter string; scheduled runs go through
the promotion gate (gate.py), so a new model only replaces the live one when it is no worse on the newest day.

Every server process ticks the scheduler, and exactly one of them starts each due run: it claims the run by
moving the schedule's ``next_run_ms`` forward with a compare-and-set (``UPDATE ... WHERE next_run_ms = <the
value it read>``); the database lets only one such update succeed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from backend.retraining.runs import RunError
from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.tables import TrainingSchedule

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
MIN_HOURS, MAX_HOURS = 0.25, 24 * 90


class ScheduleError(UpnextError, ValueError):
    """A schedule setting that cannot be used; the message says which."""


@dataclass(frozen=True)
class Schedule:
    site_id: int
    enabled: bool
    every_hours: float
    params: str
    next_run_ms: int
    last_run_id: int | None


def get_schedule(engine: Engine, site_id: int) -> Schedule | None:
    with engine.connect() as conn:
        r = conn.execute(select(TrainingSchedule).where(TrainingSchedule.site_id == site_id)).first()
    return Schedule(r.site_id, r.enabled, r.every_hours, r.params, r.next_run_ms, r.last_run_id) if r else None


def save_schedule(engine: Engine, site_id: int, *, enabled: bool, every_hours: float, params: str,
                  now: int | None = None) -> Schedule:
    """Create or change a site's schedule; the next run is ``every_hours`` from now."""
    from backend.gru4rec.params import parse_params

    if not MIN_HOURS <= every_hours <= MAX_HOURS:
        raise ScheduleError(f"retrain every: between {MIN_HOURS:g} and {MAX_HOURS:g} hours")
    if enabled and not params.strip():
        raise ScheduleError("parameters: a preset or a parameter string is needed to retrain")
    if params.strip():
        parse_params(params)
    now = now_ms() if now is None else now
    values = {"enabled": enabled, "every_hours": float(every_hours), "params": params.strip(),
              "next_run_ms": now + int(every_hours * HOUR_MS), "updated_ms": now}
    with engine.begin() as conn:
        n = conn.execute(update(TrainingSchedule).where(TrainingSchedule.site_id == site_id).values(**values)).rowcount
        if not n:
            conn.execute(TrainingSchedule.__table__.insert().values(site_id=site_id, **values))
    return get_schedule(engine, site_id)


def claim_due(engine: Engine, *, now: int | None = None) -> list[Schedule]:
    """The enabled schedules that are due and that THIS caller won (their next run moved forward)."""
    now = now_ms() if now is None else now
    with engine.connect() as conn:
        due = conn.execute(select(TrainingSchedule).where(TrainingSchedule.enabled.is_(True),
                                                          TrainingSchedule.next_run_ms <= now)).all()
    won = []
    for r in due:
        step = max(1, int(r.every_hours * HOUR_MS))
        nxt = r.next_run_ms + step
        if nxt <= now:                       # the server was down for a while: skip the missed runs
            nxt += ((now - nxt) // step + 1) * step
        with engine.begin() as conn:
            n = conn.execute(update(TrainingSchedule).where(TrainingSchedule.site_id == r.site_id,
                                                            TrainingSchedule.next_run_ms == r.next_run_ms,
                                                            TrainingSchedule.enabled.is_(True))
                             .values(next_run_ms=nxt)).rowcount
        if n == 1:
            won.append(Schedule(r.site_id, True, r.every_hours, r.params, nxt, r.last_run_id))
    return won


def record_run(engine: Engine, site_id: int, run_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(TrainingSchedule).where(TrainingSchedule.site_id == site_id)
                     .values(last_run_id=run_id))


class Scheduler:
    """Starts the due scheduled runs through a RunSupervisor (gate on)."""

    def __init__(self, engine: Engine, supervisor):
        self.engine, self.supervisor = engine, supervisor

    def tick(self, *, now: int | None = None) -> list[int]:
        started = []
        for sched in claim_due(self.engine, now=now):
            try:
                run_id = self.supervisor.start_run(sched.site_id, sched.params, trigger="schedule", gate=True)
            except (RunError, UpnextError, OSError) as exc:
                log.warning("scheduled run skipped", extra={"site": sched.site_id, "reason": str(exc)})
                continue
            record_run(self.engine, sched.site_id, run_id)
            started.append(run_id)
        return started
