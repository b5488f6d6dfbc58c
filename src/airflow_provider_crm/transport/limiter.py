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
BACKOFF_FACTOR = 0.9
"""Rate multiplier applied on each 429."""
MIN_FRACTION = 0.1
HEADROOM = 0.97
"""Share of the configured rate actually used: evenly spaced requests at exactly a window's limit
collide with the window's edge whenever timing jitters; 3% of slack avoids that."""


class RateLimiter:
    """Token bucket at ``rate`` requests per second with a burst of ``burst`` (default 1: evenly spaced).

    Vendors count requests in rolling or fixed windows; evenly spaced requests at the configured
    rate never spike past them, where a burst after an idle spell would.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.requested_rate = rate
        self.configured_rate = rate * HEADROOM
        self.rate = self.configured_rate
        self.burst = burst if burst is not None else 1.0
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
                if now > self._updated:
                    self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                    self._updated = now
                delay = max(0.0, self._paused_until - now)
                if delay == 0.0 and self._tokens >= 1.0 - 1e-9:
                    self._tokens -= 1.0
                    return
                if delay == 0.0:
                    delay = (1.0 - self._tokens) / self.rate
            self.waited += delay
            self._sleep(delay)

    def pause(self, seconds: float, *, since: float | None = None) -> None:
        """Send nothing for ``seconds`` after ``since`` (default: now) — the budget is low or spent.

        One request may go as soon as the pause ends; credit does not build up during it.
        """
        with self._lock:
            start = self._clock() if since is None else since
            if start + seconds <= self._paused_until:
                return
            self._paused_until = start + seconds
            if self._paused_until > self._updated:
                # Credit at the end of the pause is what normal spacing would have given, at most one.
                refill = (self._paused_until - self._updated) * self.rate
                self._tokens = min(1.0, self._tokens + refill)
                self._updated = self._paused_until

    def cap(self, advertised_rate: float) -> None:
        """Never exceed the rate the server says it allows (from its rate-limit headers)."""
        ceiling = advertised_rate * HEADROOM
        if ceiling <= 0:
            return
        with self._lock:
            if ceiling < self.configured_rate:
                self.configured_rate = ceiling
                self.rate = min(self.rate, ceiling)

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
            if self._successes >= 10:
                self._successes = 0
                self.rate = min(self.configured_rate, self.rate + self.configured_rate * RECOVERY_STEP)


_SHARED: dict[tuple[str, str], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(vendor: str, conn_id: str, rate: float) -> RateLimiter:
    """One limiter per connection in this process, so concurrent tasks and threads share a budget."""
    with _SHARED_LOCK:
        limiter = _SHARED.get((vendor, conn_id))
        if limiter is None or limiter.requested_rate != rate:
            limiter = RateLimiter(rate)
            _SHARED[(vendor, conn_id)] = limiter
        return limiter
