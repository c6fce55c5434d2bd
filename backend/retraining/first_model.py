"""The first model trains itself: a site without a live model starts a training run once it has collected
``UPNEXT_FIRST_MODEL_SESSIONS`` sessions of two or more views, through the run supervisor with the gate on (with
no live model the gate passes, so the model goes live when the run succeeds). Its parameters are the site's
retraining schedule's when one is set, else ``UPNEXT_FIRST_MODEL_PARAMS``.

Every server process ticks this with the scheduler; the database allows one active run per site, so a second
process's attempt is refused and skipped. A failed or cancelled first run is retried ``RETRY_MS`` after it ended.
``first_model_state`` says the same for the admin's install check: when it will happen and what it waits for.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.settings import Settings
from backend.store import runs
from backend.store.db import Engine
from backend.store.install import count_sessions, last_first_model_run
from backend.store.runs import RunError
from backend.store.schedules import get_schedule
from backend.store.trained_models import live_models
from backend.store.sites import list_sites

log = logging.getLogger(__name__)

RETRY_MS = 3_600_000


@dataclass(frozen=True)
class FirstModel:
    state: str            # live | collecting | due | training | retry_wait | off
    sessions: int         # sessions collected (counted up to ``needed``)
    needed: int
    message: str
    run_id: int | None = None
    retry_ms: int | None = None


def params_for(engine: Engine, settings: Settings, site_id: int) -> str:
    sched = get_schedule(engine, site_id)
    return sched.params if sched is not None and sched.params else settings.first_model_params


def first_model_state(engine: Engine, settings: Settings, site_id: int, *, live_model_id: int | None = None,
                      now: int | None = None) -> FirstModel:
    now = now_ms() if now is None else now
    needed = settings.first_model_sessions
    if live_model_id is None:
        live = live_models(engine).get(site_id)
        live_model_id = live.id if live else None
    if live_model_id is not None:
        return FirstModel("live", needed, needed, f"model {live_model_id} is live", run_id=None)
    sessions = count_sessions(engine, site_id, max(needed, 1))
    active = runs.active_run(engine, site_id)
    if active is not None:
        return FirstModel("training", sessions, needed, f"training run {active.id} is {active.status} "
                                                        f"({active.phase or 'starting'})", run_id=active.id)
    if needed == 0:
        return FirstModel("off", sessions, needed, "automatic first training is off (UPNEXT_FIRST_MODEL_SESSIONS=0): "
                                                   "train one on the Models page")
    last = last_first_model_run(engine, site_id)
    if last is not None and last.status in ("failed", "cancelled") and (last.finished_ms or 0) + RETRY_MS > now:
        return FirstModel("retry_wait", sessions, needed, f"first training run {last.id} {last.status}"
                          + (f": {last.error[:300]}" if last.error else "") + "; tried again after the retry time",
                          run_id=last.id, retry_ms=(last.finished_ms or now) + RETRY_MS)
    if sessions >= needed:
        return FirstModel("due", sessions, needed, f"{sessions} sessions collected: the first training run starts "
                                                   "within 15 seconds")
    return FirstModel("collecting", sessions, needed, f"{sessions} of {needed} sessions (two or more views each) "
                                                      "collected: the first model trains itself at "
                                                      f"{needed}")


def start_first_models(engine: Engine, supervisor, settings: Settings, *, now: int | None = None) -> list[int]:
    """Start the first training run of every site that is due (see the module's description); returns the runs
    started by this call."""
    if settings.first_model_sessions == 0:
        return []
    live = live_models(engine)
    started = []
    for site in list_sites(engine):
        if site["id"] in live:
            continue
        state = first_model_state(engine, settings, site["id"], live_model_id=None, now=now)
        if state.state != "due":
            continue
        try:
            run_id = supervisor.start_run(site["id"], params_for(engine, settings, site["id"]),
                                          trigger="first_model", gate=True)
        except (RunError, UpnextError, OSError) as exc:     # another process won, or bad parameters
            log.warning("first training run not started", extra={"site": site["id"], "reason": str(exc)})
            continue
        log.info("first training run started", extra={"site": site["id"], "run": run_id,
                                                      "sessions": state.sessions})
        started.append(run_id)
    return started
