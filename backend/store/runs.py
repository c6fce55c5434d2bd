"""Training runs in the store: created by the admin page or the scheduler, advanced by the run's own process
(``upnext train-run``), watched by every server process (backend/retraining/supervisor.py).

    queued --(claimed by a host)--> queued on that host --(run process starts)--> running
        --> succeeded | failed | cancelled
    queued --(cancelled before it started)--> cancelled

A queued run is claimed by exactly one host before its process starts (``claim_run``: the server that queued it,
when it trains itself; ``claim_queued``: an ``upnext worker``, the oldest unclaimed run, ``SELECT ... FOR UPDATE
SKIP LOCKED`` on PostgreSQL so workers polling at once take different runs and never wait for each other).
An unclaimed queued run waits for a worker however long it takes; a claimed one whose process never starts is
failed after STALE_QUEUED_MS.

Every transition is a conditional UPDATE on the current status, so a run is finished exactly once even when the
run process and a supervisor race (a supervisor marks a silent run failed; the run's late "succeeded" is then
refused). A partial unique index allows one queued or running run per site.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.tables import TrainingRun

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
TRIGGERS = ("manual", "schedule", "first_model", "tune")   # tune: a tuning run (retraining/tuning_run.py)
STALE_HEARTBEAT_MS = 600_000   # a running run silent this long is dead (a heavy step may hold the GIL for minutes)
STALE_QUEUED_MS = 120_000       # a claimed queued run whose process never started


class RunError(UpnextError, ValueError):
    """A run cannot be started or changed as asked."""


@dataclass(frozen=True)
class Run:
    id: int
    site_id: int
    trigger: str
    params: str
    gate: bool
    status: str
    phase: str
    progress: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    cancel_requested: bool
    model_id: int | None
    pid: int | None
    host: str | None
    log_path: str | None
    created_ms: int
    started_ms: int | None
    heartbeat_ms: int | None
    finished_ms: int | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"active": self.active}


def _run(row) -> Run:
    return Run(**{k: getattr(row, k) for k in Run.__dataclass_fields__})


def create_run(engine: Engine, site_id: int, params: str, *, trigger: str = "manual", gate: bool = False) -> int:
    """A queued run; RunError when the site already has a queued or running one."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}")
    try:
        with engine.begin() as conn:
            return conn.execute(TrainingRun.__table__.insert().values(
                site_id=site_id, trigger=trigger, params=params, gate=gate, status="queued", phase="queued",
                progress={}, result={}, cancel_requested=False, created_ms=now_ms())).inserted_primary_key[0]
    except IntegrityError:
        active = active_run(engine, site_id)
        raise RunError(f"run {active.id if active else '?'} is still {active.status if active else 'active'} for "
                       "this site: wait for it or cancel it") from None


def get_run(engine: Engine, run_id: int) -> Run | None:
    with engine.connect() as conn:
        row = conn.execute(select(TrainingRun).where(TrainingRun.id == run_id)).first()
    return _run(row) if row else None


def list_runs(engine: Engine, site_id: int, limit: int = 20) -> list[Run]:
    with engine.connect() as conn:
        rows = conn.execute(select(TrainingRun).where(TrainingRun.site_id == site_id)
                            .order_by(TrainingRun.id.desc()).limit(limit)).all()
    return [_run(r) for r in rows]


def active_run(engine: Engine, site_id: int) -> Run | None:
    with engine.connect() as conn:
        row = conn.execute(select(TrainingRun).where(TrainingRun.site_id == site_id,
                                                     TrainingRun.status.in_(ACTIVE))).first()
    return _run(row) if row else None


def active_runs(engine: Engine, *, host: str | None = None) -> list[Run]:
    """Queued and running runs (of every site), those whose process runs on ``host`` when given."""
    query = select(TrainingRun).where(TrainingRun.status.in_(ACTIVE))
    if host is not None:
        query = query.where(TrainingRun.host == host)
    with engine.connect() as conn:
        return [_run(r) for r in conn.execute(query.order_by(TrainingRun.id)).all()]


def _set(engine: Engine, run_id: int, when: tuple[str, ...], **values) -> bool:
    with engine.begin() as conn:
        return conn.execute(update(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.status.in_(when))
                            .values(**values)).rowcount == 1


def mark_started(engine: Engine, run_id: int, pid: int, host: str) -> bool:
    """The run process took the run (False: it was cancelled or failed before it started)."""
    now = now_ms()
    return _set(engine, run_id, ("queued",), status="running", phase="starting", pid=pid, host=host,
                started_ms=now, heartbeat_ms=now)


def claim_run(engine: Engine, run_id: int, host: str) -> bool:
    """``host`` takes the queued run ``run_id`` to start its process (False: cancelled or claimed meanwhile)."""
    return _claim(engine, run_id, host)


def claim_queued(engine: Engine, host: str) -> Run | None:
    """The oldest queued run no host has claimed, now claimed by ``host``; None when there is none."""
    for _ in range(5):            # SQLite has no row locks: a claim lost to another worker tries the next run
        with engine.begin() as conn:
            run_id = conn.execute(select(TrainingRun.id).where(TrainingRun.status == "queued",
                                                               TrainingRun.host.is_(None))
                                  .order_by(TrainingRun.id).limit(1)
                                  .with_for_update(skip_locked=True)).scalar()
            if run_id is None:
                return None
            won = _claim_in(conn, run_id, host)
        if won:
            return get_run(engine, run_id)
    return None


def _claim(engine: Engine, run_id: int, host: str) -> bool:
    with engine.begin() as conn:
        return _claim_in(conn, run_id, host)


def _claim_in(conn, run_id: int, host: str) -> bool:
    return conn.execute(update(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.status == "queued",
                                                  TrainingRun.host.is_(None))
                        .values(host=host, phase="claimed", heartbeat_ms=now_ms())).rowcount == 1


def set_log_path(engine: Engine, run_id: int, path: str) -> None:
    _set(engine, run_id, ACTIVE, log_path=path)


def heartbeat(engine: Engine, run_id: int, *, phase: str | None = None,
              progress: dict[str, Any] | None = None) -> bool | None:
    """Record that the run is alive (and its phase, progress); returns whether a cancel was asked, or None
    when the run is no longer running (a supervisor gave up on it)."""
    values: dict[str, Any] = {"heartbeat_ms": now_ms()}
    if phase is not None:
        values["phase"] = phase
    if progress is not None:
        values["progress"] = progress
    with engine.begin() as conn:
        n = conn.execute(update(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.status == "running")
                         .values(**values)).rowcount
        if n != 1:
            return None
        return bool(conn.execute(select(TrainingRun.cancel_requested).where(TrainingRun.id == run_id)).scalar())


def finish(engine: Engine, run_id: int, status: str, *, result: dict | None = None, error: str | None = None,
           model_id: int | None = None, progress: dict | None = None) -> bool:
    """End the run once: True if this call ended it. ``progress``: the last one, if newer than the stored."""
    if status not in FINISHED:
        raise ValueError(f"status must be one of {FINISHED}")
    values: dict[str, Any] = {"status": status, "phase": status, "finished_ms": now_ms(), "error": error}
    if result is not None:
        values["result"] = result
    if model_id is not None:
        values["model_id"] = model_id
    if progress:
        values["progress"] = progress
    return _set(engine, run_id, ACTIVE, **values)


def request_cancel(engine: Engine, run_id: int, site_id: int) -> str:
    """Cancel a run: a queued one at once, a running one by asking its process (it stops within seconds).
    Returns the run's status afterwards."""
    run = get_run(engine, run_id)
    if run is None or run.site_id != site_id:
        raise RunError(f"no run {run_id} for this site")
    if run.status == "queued" and finish(engine, run_id, "cancelled", error="cancelled before it started"):
        return "cancelled"
    _set(engine, run_id, ("running",), cancel_requested=True)
    return get_run(engine, run_id).status


def fail_stale(engine: Engine, *, now: int | None = None) -> list[int]:
    """Mark failed the runs whose process stopped writing its heartbeat (killed, crashed, host lost) and the
    claimed queued runs whose process never started (unclaimed ones wait for a worker). Returns their ids."""
    now = now_ms() if now is None else now
    with engine.connect() as conn:
        rows = conn.execute(select(TrainingRun.id, TrainingRun.status, TrainingRun.heartbeat_ms, TrainingRun.host,
                                   TrainingRun.created_ms).where(TrainingRun.status.in_(ACTIVE))).all()
    failed = []
    for r in rows:
        if r.status == "running" and (r.heartbeat_ms or 0) < now - STALE_HEARTBEAT_MS:
            reason = "the training process stopped answering (killed, crashed or its machine stopped)"
        elif r.status == "queued" and r.host is not None and (r.heartbeat_ms or r.created_ms) < now - STALE_QUEUED_MS:
            reason = "the training process never started"
        else:
            continue
        with engine.begin() as conn:   # conditional on what was read: a run that just moved on is left alone
            n = conn.execute(update(TrainingRun).where(
                TrainingRun.id == r.id, TrainingRun.status == r.status,
                TrainingRun.heartbeat_ms.is_(None) if r.heartbeat_ms is None
                else TrainingRun.heartbeat_ms == r.heartbeat_ms)
                .values(status="failed", phase="failed", error=reason, finished_ms=now)).rowcount
        if n:
            failed.append(r.id)
    return failed
