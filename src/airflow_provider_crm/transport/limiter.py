"""A client-side rate limiter shared by every request of one connection in this process.

It keeps requests under a configured rate (a token bucket), and adapts: a 429 or an exhausted
budget header pauses everyone until the window resets and lowers the rate for a while, which then
recovers step by step. A 429 therefore slows the run down instead of losing records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

RECOVERY_STEP = 0.05
"""Fraction of the configured rate regained after each run of successful requests."""
BACKOFF_FACTOR = 0.7
"""Rate multiplier applied on each 429."""
MIN_FRACTION = 0.1


class RateLimiter:
    """Token bucket at ``rate`` requests per second with a burst of ``burst`` (default: one second's worth)."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.configured_rate = rate
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = 1.0
        self._updated = clock()
        self._paused_until = 0.0
        self._successes = 0
        self.throttled = 0
        self.waited = 0.0

    def acquire(self) -> None:
        """Block until one request may be sent."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                delay = max(0.0, self._paused_until - now)
                if delay == 0.0 and self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                if delay == 0.0:
                    delay = (1.0 - self._tokens) / self.rate
            self.waited += delay
            self._sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (the server said the budget is spent)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tokens = 0.0

    def throttle(self, wait: float | None) -> None:
        """React to a 429: pause for the server's wait and lower the rate."""
        with self._lock:
            self.throttled += 1
            self._successes = 0
            self.rate = max(self.configured_rate * MIN_FRACTION, self.rate * BACKOFF_FACTOR)
        if wait:
            self.pause(wait)

    def succeeded(self) -> None:
        """Count a success; after enough of them, step the rate back towards the configured one."""
        with self._lock:
            if self.rate >= self.configured_rate:
                return
            self._successes += 1
            if self._successes >= max(5, int(self.rate)):
                self._successes = 0
                self.rate = min(self.configured_rate, self.rate + self.configured_rate * RECOVERY_STEP)


_SHARED: dict[tuple[str, str], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(vendor: str, conn_id: str, rate: float) -> RateLimiter:
    """One limiter per connection in this process, so concurrent tasks and threads share a budget."""
    with _SHARED_LOCK:
        limiter = _SHARED.get((vendor, conn_id))
        if limiter is None or limiter.configured_rate != rate:
            limiter = RateLimiter(rate)
            _SHARED[(vendor, conn_id)] = limiter
        return limiter
