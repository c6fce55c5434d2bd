"""Token-bucket rate limits kept in memory, per key and per session (one process's view of the traffic)."""
from __future__ import annotations

import time


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved up, one bucket per name.

    Idle buckets are forgotten once they would be full again, so memory follows the active names only.
    """

    def __init__(self, rate: float, burst: float, *, clock=time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}   # name -> (tokens, last refill time)
        self._next_sweep = clock() + 60.0

    def take(self, name: str, n: float = 1.0) -> float:
        """Take ``n`` tokens: 0.0 when allowed, else the seconds to wait before retrying (nothing taken)."""
        now = self._clock()
        tokens, last = self._buckets.get(name, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if now >= self._next_sweep:
            self._sweep(now)
        if n > self.burst:           # could never be allowed: wait for a full bucket and let it through then
            n = self.burst
        if tokens >= n:
            self._buckets[name] = (tokens - n, now)
            return 0.0
        self._buckets[name] = (tokens, now)
        return (n - tokens) / self.rate

    def give_back(self, name: str, n: float) -> None:
        """Return tokens taken for a request that was refused later for another reason."""
        if name in self._buckets:
            tokens, last = self._buckets[name]
            self._buckets[name] = (min(self.burst, tokens + n), last)

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
        self._next_sweep = now + 60.0

    def __len__(self) -> int:
        return len(self._buckets)
