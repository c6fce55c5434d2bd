"""Starts background training runs as their own processes and makes sure none stays "running" forever.

Every server process runs ``check`` about every second:
- its own children that exited without ending their run (killed by a signal, crashed before they could
  write) have their run marked failed with the exit status and the end of their log;
- runs on this host whose process is gone (started by a worker that has since stopped) are marked failed;
- runs anywhere whose heartbeat went silent for minutes (another host died) are marked failed.
At shutdown the supervisor stops the runs it started (SIGTERM: they mark themselves failed and clean up).
Training runs in the spawned process with a lower CPU priority; the server keeps serving.

Where runs execute (``UPNEXT_TRAIN_ON``): ``serve``, the process that queues a run claims it and starts it at once
(one machine, the default); ``worker``, ``start_run`` only queues it and an ``upnext worker`` on any host claims
it (``claim_next``, one run at a time per worker) and starts it the same way. Progress, cancel and failure
detection go through the run's row, so they work from every host.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys

from backend.gru4rec.params import parse_params
from backend.retraining.tuning_run import parse_request
from backend.settings import REPO_ROOT, Settings
from backend.store import runs
from backend.store.db import Engine

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 4000
STOP_WAIT_S = 10.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit status {code}"


def log_tail(path: str | None, limit: int = LOG_TAIL_BYTES) -> str:
    """The end of a run's log file (when it is on this host), for the admin page."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunSupervisor:
    def __init__(self, engine: Engine, settings: Settings, *, command: list[str] | None = None):
        self.engine, self.settings = engine, settings
        self.command = command or [sys.executable, "-m", "backend", "train-run"]
        self.host = socket.gethostname()
        self.children: dict[int, subprocess.Popen] = {}

    def start_run(self, site_id: int, params: str, *, trigger: str = "manual", gate: bool = False) -> int:
        """Queue a run and start its process; ParamsError for a bad parameter string (TuneError for a bad tuning
        request: trigger "tune"), RunError when the site has a run already."""
        if trigger == "tune":
            parse_request(params)                  # refuse bad requests here, not in a log file
        else:
            parse_params(params)
        run_id = runs.create_run(self.engine, site_id, params, trigger=trigger, gate=gate)
        if self.settings.train_on == "worker" or not runs.claim_run(self.engine, run_id, self.host):
            return run_id                          # a worker claims it
        try:
            self._spawn(run_id)
        except OSError as exc:
            runs.finish(self.engine, run_id, "failed", error=f"the training process could not start: {exc}")
            raise
        return run_id

    def claim_next(self) -> int | None:
        """A worker's turn: when none of its runs is still going, claim the oldest queued run and start it."""
        if any(proc.poll() is None for proc in self.children.values()):
            return None
        run = runs.claim_queued(self.engine, self.host)
        if run is None:
            return None
        try:
            self._spawn(run.id)
        except OSError as exc:
            runs.finish(self.engine, run.id, "failed", error=f"the training process could not start: {exc}")
            return None
        return run.id

    def _spawn(self, run_id: int) -> None:
        log_dir = self.settings.data_dir / "runs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"run-{run_id}.log"
        runs.set_log_path(self.engine, run_id, str(log_path.resolve()))
        # The child reads its settings from the environment like any `upnext` command: pass the store and the
        # data folder this server uses, whatever set them (the environment or the code that built the app).
        env = {**os.environ, "UPNEXT_DATABASE_URL": self.settings.sqlalchemy_url,
               "UPNEXT_DATA_DIR": str(self.settings.data_dir), "UPNEXT_TRAIN_DEVICE": self.settings.train_device,
               "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([*self.command, str(run_id)], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.children[run_id] = proc
        log.info("training run started", extra={"run": run_id, "pid": proc.pid, "log": str(log_path)})

    def cancel(self, run_id: int, site_id: int) -> str:
        return runs.request_cancel(self.engine, run_id, site_id)

    def check(self) -> list[int]:
        """One supervision round (see the module docstring); returns the runs it marked failed."""
        failed = []
        for run_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.children[run_id]
            run = runs.get_run(self.engine, run_id)
            if run is not None and run.active:
                tail = log_tail(run.log_path, 600).strip()
                error = f"the training process ended ({describe_exit(code)}) before finishing its run"
                if runs.finish(self.engine, run_id, "failed", error=error + (f"; log: …{tail}" if tail else "")):
                    failed.append(run_id)
        for run in runs.active_runs(self.engine, host=self.host):
            if run.id not in self.children and run.pid and not pid_alive(run.pid):
                if runs.finish(self.engine, run.id, "failed",
                               error=f"the training process (pid {run.pid}) is gone without finishing its run"):
                    failed.append(run.id)
        failed += runs.fail_stale(self.engine)
        for run_id in failed:
            log.warning("training run marked failed", extra={"run": run_id})
        return failed

    def stop(self) -> None:
        """Stop the runs this process started (they end as failed), waiting a little for them to clean up."""
        if not self.children:
            return
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.children.values():
            try:
                proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            self.check()
        except Exception:  # shutting down with the database gone: the runs' heartbeats will expire
            log.exception("could not record the stopped training runs")
