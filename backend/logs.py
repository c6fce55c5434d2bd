"""Structured logs: one line per record, as ``key=value`` text or JSON, with the record's extra fields."""
from __future__ import annotations

import json
import logging
import sys
import threading

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                         "color_message"}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), record.levelname, record.name,
                 json.dumps(record.getMessage())]
        parts += [f"{k}={json.dumps(v, default=str)}" for k, v in _extras(record).items()]
        if record.exc_info:
            parts.append("\n" + self.formatException(record.exc_info))
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": record.created, "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
               **_extras(record)}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # No access log: it would write visitors' IP addresses; /metrics has per-route latency and counts.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


class FaultLog:
    """Logs a fault once per fault period, not once per failed attempt: the first failure is logged (with its
    traceback), the following ones are only counted, and the first success after them logs the recovery."""

    def __init__(self, logger: logging.Logger, what: str):
        self._log, self._what = logger, what
        self._lock = threading.Lock()
        self.failures = 0          # failed attempts in the current fault period (0: healthy)

    def failed(self, exc: BaseException, **extra) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
        if first:
            self._log.error("%s failed: %s", self._what, exc.__class__.__name__, exc_info=exc,
                            extra={**extra, "error": str(exc)[:300]})

    def succeeded(self) -> None:
        with self._lock:
            failures, self.failures = self.failures, 0
        if failures:
            self._log.warning("%s recovered", self._what, extra={"failed_attempts": failures})
