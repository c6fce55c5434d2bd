"""``upnext worker``: the host that trains (the one with the GPU). It claims queued training runs from the store,
whichever server queued them (the admin page, the retraining schedule), one at a time, and runs each in its own
process as a server would (supervisor.py); it also ticks the retraining schedule, so scheduled runs need no
server. Several workers may run: each queued run is claimed by exactly one (store/runs.claim_queued).
"""
from __future__ import annotations

import logging
import threading
import time

from backend.logs import FaultLog
from backend.retraining.scheduler import Scheduler
from backend.retraining.supervisor import RunSupervisor
from backend.settings import Settings
from backend.store.db import Engine

log = logging.getLogger(__name__)

POLL_S = 1.0
SCHEDULE_S = 15.0


class Worker:
    def __init__(self, engine: Engine, settings: Settings, *, command: list[str] | None = None):
        self.supervisor = RunSupervisor(engine, settings, command=command)
        self.scheduler = Scheduler(engine, self.supervisor)

    def step(self) -> int | None:
        """One round: end the runs whose process died, then claim and start the next queued run when idle."""
        self.supervisor.check()
        return self.supervisor.claim_next()

    def run(self, stop: threading.Event, *, poll_s: float = POLL_S, schedule_s: float = SCHEDULE_S) -> None:
        """Work until ``stop`` is set, then stop the runs still going (they end as failed, saying why)."""
        faults, next_tick = FaultLog(log, "training worker"), 0.0
        log.info("worker ready", extra={"host": self.supervisor.host})
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_tick:
                        self.scheduler.tick()
                        next_tick = time.monotonic() + schedule_s
                    started = self.step()
                except Exception as exc:  # the database away for a while: retried next round, logged once
                    faults.failed(exc)
                else:
                    faults.succeeded()
                    if started is not None:
                        log.info("worker took a run", extra={"run": started})
                stop.wait(poll_s)
        finally:
            self.supervisor.stop()
