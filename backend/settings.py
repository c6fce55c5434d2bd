"""Typed settings, read once from the environment. The only module that reads ``os.environ``.

Every setting has an ``UPNEXT_`` variable, a type, a default and a range. A bad value raises
``SettingsError`` naming the variable, what it must be and what it was, so a person can fix it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from backend.errors import UpnextError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent        # the checkout (in an installed wheel: site-packages, holding no resources)
# the password of a database URL: after "user:" up to the "@" (as SQLAlchemy parses it), or a password= parameter
_URL_PASSWORD = re.compile(r"^([\w+]+://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def resource_dir(name: str) -> Path:
    """A folder shipped with Upnext (``static``, ``migrations``): the installed package's copy (a wheel carries
    them in ``backend/_bundled/``, setup.py), else the checkout's."""
    bundled = PACKAGE_DIR / "_bundled" / name
    return bundled if bundled.is_dir() else REPO_ROOT / name


class SettingsError(UpnextError, ValueError):
    """An ``UPNEXT_*`` variable holds a value Upnext cannot use."""


def _spec(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
          choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _spec(Path("var"), "folder for the SQLite database, models and logs")
    database_url: str = _spec("", "SQLAlchemy URL; default: sqlite:///<data_dir>/upnext.db")
    host: str = _spec("127.0.0.1", "address `upnext serve` binds")
    port: int = _spec(8000, "port `upnext serve` binds", lo=1, hi=65535)
    workers: int = _spec(1, "server processes sharing the port", lo=1, hi=64)
    max_connections: int = _spec(1000, "open connections per server process; past it requests are answered 503 "
                                       "(the open-file limit is raised to fit when it can be)", lo=1, hi=1_000_000)
    max_header_kib: int = _spec(64, "largest request line and headers, KiB; past it the request gets 431 and its "
                                    "connection closes", lo=1, hi=1024)
    header_timeout_s: float = _spec(10.0, "a request's line and headers must arrive within this many seconds (of "
                                          "their first byte, or of the connection's opening): else 408 and close",
                                    lo=0.1, hi=3600)
    body_timeout_s: float = _spec(30.0, "longest pause inside a request body: else 408 and close", lo=0.1, hi=3600)
    keep_alive_s: int = _spec(5, "an idle connection closes after this many seconds", lo=1, hi=3600)
    admin_password: str = _spec("", "admin login password (empty: set on first visit, stored hashed)")
    retention_days: int = _spec(90, "events older than this many days are purged", lo=1, hi=36500)
    purge_interval_s: float = _spec(3600.0, "how often the server purges old events", lo=1, hi=86400 * 7)
    state_mb: int = _spec(256, "memory budget of the in-memory session states, MiB", lo=1, hi=1 << 20)
    item_matrix: str = _spec("auto", "scoring copy of the item matrix: float32, float16 (half the memory "
                                     "traffic), or auto (float16 from 16M values)", choices=("auto", "float32",
                                                                                            "float16"))
    trusted_proxies: str = _spec("", "addresses of the reverse proxies in front of Upnext, comma-separated (or *): "
                                     "their X-Forwarded-For and -Proto give the client's address and scheme; "
                                     "empty: those headers are ignored")
    train_device: str = _spec("auto", "where training runs started by the server train: auto (the GPU when torch "
                                      "and numba-cuda can use one, else the CPU), cuda or cpu",
                              choices=("auto", "cpu", "cuda"))
    first_model_sessions: int = _spec(1000, "a site without a live model trains its first one by itself once it has "
                                            "this many sessions of two or more views (0: never)", lo=0, hi=10**9)
    first_model_params: str = _spec("diginetica", "preset and/or parameter string of that first training run (a "
                                                  "site's retraining schedule, when set, wins)")
    train_on: str = _spec("serve", "who executes training runs (the admin's and scheduled ones): serve (the server "
                                   "process that queued the run, as on one machine) or worker (an `upnext worker` "
                                   "on any host claims it from the queue)", choices=("serve", "worker"))
    commit_interval_ms: float = _spec(2.0, "group commit: longest wait for more events", lo=0, hi=1000)
    commit_max_events: int = _spec(5000, "group commit: most events in one transaction", lo=1, hi=1_000_000)
    max_pending_events: int = _spec(50_000, "events waiting for commit before 503", lo=100, hi=10_000_000)
    rate_key_events: float = _spec(20_000.0, "events per second one key may send (burst: 2 s)", lo=1, hi=1e9)
    rate_session_events: float = _spec(50.0, "events per second one session may send (burst: 4 s)",
                                       lo=1, hi=1e9)
    rate_key_recommendations: float = _spec(1000.0, "recommendation requests per second one key may make "
                                                   "(burst: 2 s); over it: 429 with Retry-After", lo=1, hi=1e9)
    max_pending_served: int = _spec(10_000, "served recommendation lists waiting for commit; beyond it new ones "
                                            "are dropped (counted in upnext_served_lists_dropped_total)",
                                    lo=100, hi=10_000_000)
    db_connect_timeout_s: float = _spec(5.0, "longest wait for a database connection (PostgreSQL connect, "
                                             "connection pool)", lo=1, hi=600)
    db_statement_timeout_s: float = _spec(60.0, "longest database statement (PostgreSQL statement_timeout, "
                                                "SQLite wait for a lock) of background work and commands",
                                          lo=1, hi=86400)
    db_request_timeout_s: float = _spec(2.0, "longest wait of a request for the database (the commit of its "
                                             "events, the health check); then 503 with Retry-After",
                                        lo=0.1, hi=600)
    log_level: str = _spec("INFO", "logging level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = _spec("text", "log lines as key=value text or JSON", choices=("text", "json"))

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'upnext.db').as_posix()}"

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def upload_dir(self) -> Path:
        """Where admin imports copy their uploads while importing (the server's own folder, cleaned at start-up)."""
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from ``env`` (default ``os.environ``); ``overrides`` win over both."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = "UPNEXT_" + f.name.upper()
            if f.name in overrides:
                raw: Any = overrides[f.name]
            elif var in env:
                raw = env[var]
            else:
                continue
            values[f.name] = _convert(var, raw, f.type, f.metadata)
        return cls(**values)

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, current value, help) for every setting; the admin and database passwords are masked."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            shown = "***" if f.name == "admin_password" and value else str(value)
            if f.name == "database_url":
                shown = _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", shown))
            rows.append(("UPNEXT_" + f.name.upper(), shown, f.metadata["help"]))
        return rows


def _convert(var: str, raw: Any, typ: Any, meta: Mapping[str, Any]) -> Any:
    typ = {"int": int, "float": float, "str": str, "Path": Path}.get(typ, typ)
    text = str(raw).strip()
    try:
        if typ is int:
            value: Any = int(text)
        elif typ is float:
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        elif typ is Path:
            if not text:
                raise ValueError
            value = Path(text)
        else:
            value = text
    except ValueError:
        kind = {int: "an integer", float: "a number", Path: "a path"}.get(typ, "a string")
        raise SettingsError(f"{var} must be {kind}, got {raw!r}") from None
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise SettingsError(f"{var} must be between {lo:g} and {hi:g}, got {raw!r}")
    if choices:
        value = value.upper() if choices[0].isupper() else value.lower()
        if value not in choices:
            raise SettingsError(f"{var} must be one of {', '.join(choices)}, got {raw!r}")
    if var == "UPNEXT_DATABASE_URL" and value and "://" not in value:
        raise SettingsError(f"{var} must be a URL like sqlite:///var/upnext.db or "
                            f"postgresql+psycopg://user:pass@host/db, got {raw!r}")
    return value
