"""Retraining schedules in the store: one row per site (``training_schedules``), read and advanced by the
scheduler of every server process (backend/retraining/scheduler.py decides when a schedule is due and what its
next run is; this module only reads and writes the rows).

A due run is claimed with a compare-and-set on ``next_run_ms`` (``advance_schedule``): among processes that read
the same value, the database lets exactly one move it forward.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from backend.store.tables import TrainingSchedule


@dataclass(frozen=True)
class Schedule:
    site_id: int
    enabled: bool
    every_hours: float
    params: str
    next_run_ms: int
    last_run_id: int | None


def _schedule(r) -> Schedule:
    return Schedule(r.site_id, r.enabled, r.every_hours, r.params, r.next_run_ms, r.last_run_id)


def get_schedule(engine: Engine, site_id: int) -> Schedule | None:
    with engine.connect() as conn:
        r = conn.execute(select(TrainingSchedule).where(TrainingSchedule.site_id == site_id)).first()
    return _schedule(r) if r else None


def write_schedule(engine: Engine, site_id: int, *, enabled: bool, every_hours: float, params: str,
                   next_run_ms: int, updated_ms: int) -> None:
    """Create or replace the site's schedule (its ``last_run_id`` is kept)."""
    values = {"enabled": enabled, "every_hours": every_hours, "params": params, "next_run_ms": next_run_ms,
              "updated_ms": updated_ms}
    with engine.begin() as conn:
        n = conn.execute(update(TrainingSchedule).where(TrainingSchedule.site_id == site_id).values(**values)).rowcount
        if not n:
            conn.execute(TrainingSchedule.__table__.insert().values(site_id=site_id, **values))


def due_schedules(engine: Engine, now: int) -> list[Schedule]:
    """The enabled schedules whose next run is at or before ``now`` (unix ms)."""
    with engine.connect() as conn:
        rows = conn.execute(select(TrainingSchedule).where(TrainingSchedule.enabled.is_(True),
                                                           TrainingSchedule.next_run_ms <= now)).all()
    return [_schedule(r) for r in rows]


def advance_schedule(engine: Engine, site_id: int, *, seen_next_run_ms: int, next_run_ms: int) -> bool:
    """Move an enabled schedule's next run from ``seen_next_run_ms`` (the value the caller read) to
    ``next_run_ms``; True when this call did it (it won the due run), False when another caller did first or the
    schedule changed meanwhile."""
    with engine.begin() as conn:
        return conn.execute(update(TrainingSchedule).where(TrainingSchedule.site_id == site_id,
                                                           TrainingSchedule.next_run_ms == seen_next_run_ms,
                                                           TrainingSchedule.enabled.is_(True))
                            .values(next_run_ms=next_run_ms)).rowcount == 1


def record_run(engine: Engine, site_id: int, run_id: int) -> None:
    """Remember the run the schedule started last."""
    with engine.begin() as conn:
        conn.execute(update(TrainingSchedule).where(TrainingSchedule.site_id == site_id)
                     .values(last_run_id=run_id))
