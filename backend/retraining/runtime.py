"""The admin's background work inside a server process, owned by the app's Services: the run supervisor
(every second), the retraining scheduler and the first model's start (every 15 s) and the settings poller (every 5 s)."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from backend.access.credentials import ensure_setup_code
from backend.logs import FaultLog
from backend.retraining.first_model import start_first_models
from backend.retraining.scheduler import Scheduler
from backend.retraining.supervisor import RunSupervisor
from backend.store.app_settings import SettingsPoller, apply_state_budget

log = logging.getLogger(__name__)

SUPERVISE_S = 1.0
SCHEDULE_S = 15.0
SETTINGS_S = 5.0


class AdminRuntime:
    def __init__(self, svc):
        self.svc = svc
        self.supervisor = RunSupervisor(svc.engine, svc.settings)
        self.scheduler = Scheduler(svc.engine, self.supervisor)
        self.settings = SettingsPoller(svc.settings)
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        await asyncio.to_thread(self.apply_settings)
        await asyncio.to_thread(ensure_setup_code, self.svc.engine, self.svc.settings)
        for name, period, work in (("run-supervisor", SUPERVISE_S, self.supervisor.check),
                                   ("retrain-scheduler", SCHEDULE_S, self.scheduler.tick),
                                   ("first-model", SCHEDULE_S, self.first_models),
                                   ("settings-sync", SETTINGS_S, self.apply_settings)):
            self._tasks.append(asyncio.create_task(_every(period, work, name), name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.supervisor.stop)

    def first_models(self) -> list[int]:
        return start_first_models(self.svc.engine, self.supervisor, self.svc.settings)

    def apply_settings(self) -> set[str]:
        """Make the stored overrides this process's settings; resize what must be resized."""
        new, changed = self.settings.poll(self.svc.engine)
        if changed:
            self.svc.settings = new
            self.supervisor.settings = new
            if "state_mb" in changed:
                apply_state_budget(self.svc.models, new.state_mb << 20)
            log.info("settings applied", extra={"changed": sorted(changed)})
        return changed


async def _every(period: float, work: Callable[[], object], name: str) -> None:
    faults = FaultLog(log, f"background task {name}")
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(work)
        except Exception as exc:  # a failed round is retried next period; it must never stop the server
            faults.failed(exc, task=name)     # logged once per fault period (the database down), not every round
        else:
            faults.succeeded()
