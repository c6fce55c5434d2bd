"""Login throttling, shared by all server processes through the ``admin_login_failures`` table.

Failed logins are counted over a sliding window: per client (a keyed hash of its address, never the address
itself) and for everybody together. Past either limit, logins are refused without checking the password until
the oldest failure in the window has aged out; the message says how long that is. A successful login clears the
client's failures. Behind a reverse proxy every client has the proxy's address, so the per-client limit acts as
a second global one.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from backend.clock import now_ms
from backend.store.db import Engine
from backend.store.login_failures import clear_failures, recent_failures, record_failure

WINDOW_MS = 15 * 60 * 1000
PER_CLIENT = 5
GLOBAL = 50


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0
    scope: str = ""          # "client" or "global" when refused

    @property
    def message(self) -> str:
        minutes = max(1, -(-self.retry_after_s // 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        if self.scope == "client":
            return f"Too many failed logins from your address: try again in {wait}."
        return f"Too many failed logins on this server: logins are paused for {wait}."


class LoginThrottle:
    def __init__(self, engine: Engine, secret: str, *, window_ms: int = WINDOW_MS, per_client: int = PER_CLIENT,
                 global_limit: int = GLOBAL):
        self.engine, self._key = engine, secret.encode("utf-8")
        self.window_ms, self.per_client, self.global_limit = window_ms, per_client, global_limit

    def client_key(self, address: str | None) -> str:
        return hmac.new(self._key, (address or "unknown").encode("utf-8"), hashlib.sha256).hexdigest()

    def check(self, address: str | None, *, now: int | None = None) -> Verdict:
        """May this client try a password now?"""
        now = now_ms() if now is None else now
        since = now - self.window_ms
        recent = recent_failures(self.engine, self.client_key(address), since, client_limit=self.per_client,
                                 global_limit=self.global_limit)
        if recent.global_oldest_counted is not None:
            return Verdict(False, _seconds_until(recent.global_oldest_counted + self.window_ms, now), "global")
        if len(recent.client_times) >= self.per_client:
            return Verdict(False, _seconds_until(recent.client_times[-1] + self.window_ms, now), "client")
        return Verdict(True)

    def failed(self, address: str | None, *, now: int | None = None) -> None:
        now = now_ms() if now is None else now
        record_failure(self.engine, self.client_key(address), now, forget_until_ms=now - self.window_ms)

    def succeeded(self, address: str | None) -> None:
        clear_failures(self.engine, self.client_key(address))


def _seconds_until(deadline_ms: int, now: int) -> int:
    return max(1, -(-(deadline_ms - now) // 1000))
