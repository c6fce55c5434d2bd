"""``upnext serve`` as a child process on a local port, for the simulator (simulator.py) and for the tests and
benchmarks: started in a process group of its own, ready once /healthz answers, stopped with SIGTERM (uvicorn
finishes the requests in flight, the lifespan drains the event writer) or with kill -9 (no shutdown code runs).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.errors import UpnextError
from backend.settings import REPO_ROOT


class ServerError(UpnextError):
    """The server did not start; the message says why and where its log is."""


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m backend serve`` on 127.0.0.1 (``port``, or a free one), with ``UPNEXT_DATABASE_URL`` and,
    when given, ``UPNEXT_DATA_DIR`` set over this process's environment, then ``env`` over those. ``workers``
    None leaves the count to ``serve`` (UPNEXT_WORKERS or 1). Its output goes to ``log_path`` (appended), or
    nowhere. ``program``: another ``upnext`` to run (e.g. an installed wheel's script), from ``cwd``.

    ``with ServerProcess(...) as server`` starts it (unless ``start()`` already did) and stops it on the way out:
    SIGTERM, and kill -9 if it has not stopped within 60 s."""

    def __init__(self, database_url: str, *, workers: int | None = 1, port: int | None = None,
                 env: dict | None = None, log_path: Path | None = None, data_dir: Path | None = None,
                 program: list[str] | None = None, cwd: Path | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "UPNEXT_DATABASE_URL": database_url, "UPNEXT_LOG_LEVEL": "WARNING",
                    "PYTHONUNBUFFERED": "1", **({"UPNEXT_DATA_DIR": str(data_dir)} if data_dir else {}),
                    **(env or {})}
        self.workers = workers
        self.program = program or [sys.executable, "-m", "backend"]
        self.cwd = cwd or REPO_ROOT
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ServerProcess":
        """Start the server and wait until /healthz answers 200; ServerError if it exits first or does not
        answer within ``timeout`` seconds (it is killed then)."""
        cmd = [*self.program, "serve", "--port", str(self.port)]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            if self.log_path:
                log.close()   # the child holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"the server exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise ServerError(f"the server did not answer /healthz within {timeout} s (log: {self.log_path})")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM: uvicorn stops accepting, finishes in-flight requests, the lifespan drains the writer.
        Returns the exit status; subprocess.TimeoutExpired if it has not exited within ``timeout`` s."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9 the whole process group: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 60) -> None:
        """``terminate``, then ``kill`` if it has not exited within ``timeout`` s; nothing if it is not running."""
        if self.proc and self.proc.poll() is None:
            try:
                self.terminate(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "ServerProcess":
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
