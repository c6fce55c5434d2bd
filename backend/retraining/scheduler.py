"""Scheduled retraining: each site may retrain every N hours with a parameter string; scheduled runs go through
the promotion gate (gate.py), so a new model only replaces the live one when it is no worse on the newest day.

Every server process ticks the scheduler, and exactly one of them starts each due run: it claims the run by
moving the schedule's ``next_run_ms`` forward with a compare-and-set (``UPDATE ... WHERE next_run_ms = <the
value it read>``, backend/store/schedules.py); the database lets only one such update succeed.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.gru4rec.params import parse_params
from backend.store.db import Engine
from backend.store.runs import RunError
from backend.store.schedules import Schedule, advance_schedule, due_schedules, get_schedule, record_run, write_schedule

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
MIN_HOURS, MAX_HOURS = 0.25, 24 * 90


class ScheduleError(UpnextError, ValueError):
    """A schedule setting that cannot be used; the message says which."""


def save_schedule(engine: Engine, site_id: int, *, enabled: bool, every_hours: float, params: str,
                  now: int | None = None) -> Schedule:
    """Create or change a site's schedule; the next run is ``every_hours`` from now."""
    if not MIN_HOURS <= every_hours <= MAX_HOURS:
        raise ScheduleError(f"retrain every: between {MIN_HOURS:g} and {MAX_HOURS:g} hours")
    if enabled and not params.strip():
        raise ScheduleError("parameters: a preset or a parameter string is needed to retrain")
    if params.strip():
        parse_params(params)
    now = now_ms() if now is None else now
    write_schedule(engine, site_id, enabled=enabled, every_hours=float(every_hours), params=params.strip(),
                   next_run_ms=now + int(every_hours * HOUR_MS), updated_ms=now)
    return get_schedule(engine, site_id)


def set_default_params(engine: Engine, site_id: int, params: str, *, now: int | None = None) -> Schedule:
    """Make ``params`` the site's parameters for scheduled retraining (what tuning found best): a schedule's
    other settings and its next run are kept; a site without a schedule gets a disabled one (every 24 hours)
    that the admin can switch on."""
    parse_params(params)
    now = now_ms() if now is None else now
    sched = get_schedule(engine, site_id)
    if sched is None:
        write_schedule(engine, site_id, enabled=False, every_hours=24.0, params=params,
                       next_run_ms=now + 24 * HOUR_MS, updated_ms=now)
    else:
        write_schedule(engine, site_id, enabled=sched.enabled, every_hours=sched.every_hours, params=params,
                       next_run_ms=sched.next_run_ms, updated_ms=now)
    return get_schedule(engine, site_id)


def next_run_after(sched: Schedule, now: int) -> int:
    """The schedule's next run after the due one: one period later, or the first period end after ``now`` when
    the server was down for a while (the missed runs are skipped, not replayed)."""
    step = max(1, int(sched.every_hours * HOUR_MS))
    nxt = sched.next_run_ms + step
    if nxt <= now:
        nxt += ((now - nxt) // step + 1) * step
    return nxt


def claim_due(engine: Engine, *, now: int | None = None) -> list[Schedule]:
    """The enabled schedules that are due and that THIS caller won (their next run moved forward)."""
    now = now_ms() if now is None else now
    won = []
    for sched in due_schedules(engine, now):
        nxt = next_run_after(sched, now)
        if advance_schedule(engine, sched.site_id, seen_next_run_ms=sched.next_run_ms, next_run_ms=nxt):
            won.append(replace(sched, next_run_ms=nxt))
    return won


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
