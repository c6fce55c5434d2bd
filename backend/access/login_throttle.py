"""Login throttling, shared by all server processes through the ``admin_login_failures`` table.

Failed logins are counted over a sliding window: per client (a keyed hash of its address, never the address
itself) and for everybody together. Past either limit, logins are refused without checking the password until
the oldest failure in the window has aged out; the message says how long that is. A successful login clears the
client's failures.

An attempt is counted *before* its password is checked (it stays a failure unless the login succeeds), and the
limit is then checked over the attempts stored, its own included; a refused attempt is removed again. Concurrent
attempts, in one process or several, each see the others' committed rows, so at most the limit of them are
ever checked (under a race some may be refused that a slower client would have been allowed, never the reverse). Behind a reverse proxy every client has the proxy's address, so the per-client limit acts as
a second global one.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from backend.clock import now_ms
from backend.store.db import Engine
from backend.store.login_failures import clear_failures, delete_attempt, recent_failures, record_attempt

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

    def attempt(self, address: str | None, *, now: int | None = None) -> Verdict:
        """Count an attempt by this client and say whether its password may be checked. An allowed attempt stays
        counted as a failure unless ``succeeded`` follows; a refused one is not counted."""
        now = now_ms() if now is None else now
        client = self.client_key(address)
        attempt_id = record_attempt(self.engine, client, now, forget_until_ms=now - self.window_ms)
        # with this attempt included, one more than each limit may be stored
        recent = recent_failures(self.engine, client, now - self.window_ms, client_limit=self.per_client + 1,
                                 global_limit=self.global_limit + 1)
        if recent.global_oldest_counted is not None:
            verdict = Verdict(False, _seconds_until(recent.global_oldest_counted + self.window_ms, now), "global")
        elif len(recent.client_times) > self.per_client:
            verdict = Verdict(False, _seconds_until(recent.client_times[-1] + self.window_ms, now), "client")
        else:
            return Verdict(True)
        delete_attempt(self.engine, attempt_id)
        return verdict

    def succeeded(self, address: str | None) -> None:
        clear_failures(self.engine, self.client_key(address))


def _seconds_until(deadline_ms: int, now: int) -> int:
    return max(1, -(-(deadline_ms - now) // 1000))
