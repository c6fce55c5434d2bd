"""Start a real ``upnext serve`` process for tests and benchmarks, and stop it (gracefully or with kill -9)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.settings import REPO_ROOT
from tests.support.postgres import free_port


class ServerProcess:
    def __init__(self, database_url: str, *, workers: int = 1, port: int | None = None, env: dict | None = None,
                 log_path: Path | None = None, data_dir: Path | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "UPNEXT_DATABASE_URL": database_url, "UPNEXT_LOG_LEVEL": "WARNING",
                    "PYTHONUNBUFFERED": "1", **({"UPNEXT_DATA_DIR": str(data_dir)} if data_dir else {}),
                    **(env or {})}
        self.workers = workers
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ServerProcess":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port", str(self.port),
                                          "--workers", str(self.workers)], cwd=REPO_ROOT, env=self.env,
                                         stdout=log, stderr=log, start_new_session=True)
        finally:
            if self.log_path:
                log.close()   # the child holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not answer /healthz within {timeout} s")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM: uvicorn stops accepting, finishes in-flight requests, the lifespan drains the writer."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9 the whole process group: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
