"""A client-side rate limiter shared by every request of one connection in this process.

It keeps requests under a ceiling (a token bucket), and adapts: a 429 or an exhausted budget
header pauses everyone until the window resets and lowers the rate for a while, which then
recovers step by step. A 429 therefore slows the run down instead of losing records.

The ceiling is either an explicit rate, which a lower limit advertised in the server's headers can
only lower, or (with a ``share``) a share of whatever limit the server advertises, followed up and
down: the vendor's documented default until the first answer says otherwise.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

RECOVERY_STEP = 0.05
"""Fraction of the configured rate regained after each run of successful requests."""
BACKOFF_FACTOR = 0.9
"""Rate multiplier applied on each 429."""
MIN_FRACTION = 0.1
LATE_CREDIT = 0.25
"""Credit (in requests) the bucket holds beyond its burst. A request sent late — a sleeper woken a
few milliseconds after its turn, a thread waiting for the interpreter — leaves the next one up to a
quarter of the spacing earlier, so such delays do not add up to a slower pace than the rate. Any
window then holds at most ``rate * window + burst + LATE_CREDIT`` requests."""
HEADROOM = 0.97
"""Share of the configured rate actually used: evenly spaced requests at exactly a window's limit
collide with the window's edge whenever timing jitters; 3% of slack avoids that. A share of an
advertised limit that already leaves more slack is used as it is."""


def usable_rate(rate: float) -> bool:
    """Whether an advertised rate is worth heeding: a finite number above zero (0, negative, NaN, inf are not)."""
    return math.isfinite(rate) and rate > 0


class RateLimiter:
    """Token bucket at ``rate`` requests per second with a burst of ``burst`` (default 1: evenly spaced).

    Vendors count requests in rolling or fixed windows; evenly spaced requests at the configured
    rate never spike past them, where a burst after an idle spell would.

    :param rate: Requests per second to start at (an explicit rate, or the vendor's documented default).
    :param burst: Requests that may go at once after an idle spell; default 1.
    :param clock: Monotonic seconds (a fake one in tests).
    :param sleep: How to wait (a fake one in tests).
    :param share: ``None``: ``rate`` is explicit, an advertised limit only lowers it. A number in (0, 1]:
        follow that share of the latest limit the server advertises, upwards as well as down.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        share: float | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if share is not None and not 0 < share <= 1:
            raise ValueError("share must be above 0 and at most 1")
        self.requested_rate = rate
        self.share = share
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
                    self._tokens = min(self.burst + LATE_CREDIT, self._tokens + (now - self._updated) * self.rate)
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

    def heed_advertised(self, advertised_rate: float) -> None:
        """Adjust the ceiling to the rate the server's rate-limit headers advertise.

        With an explicit rate the ceiling only ever comes down (to the advertised rate less
        :data:`HEADROOM`); with a ``share`` it moves to that share of the advertised rate, up or down.
        A rate lowered by a 429 keeps recovering towards the new ceiling, and never exceeds it.

        :param advertised_rate: Requests per second; 0, negative, NaN or infinite values are ignored.
        """
        if not usable_rate(advertised_rate):
            return
        with self._lock:
            if self.share is None:
                ceiling = advertised_rate * HEADROOM
                moved = ceiling < self.configured_rate
            else:
                ceiling = advertised_rate * min(self.share, HEADROOM)
                moved = not math.isclose(ceiling, self.configured_rate)
            if moved:
                self._move_ceiling(ceiling)
        if moved:
            log.info("the server advertises %.3g requests/s; sending at most %.3g/s", advertised_rate, ceiling)

    def _move_ceiling(self, ceiling: float) -> None:
        """Set the ceiling; a rate at full speed moves with it, a throttled one stays (at most the ceiling)."""
        at_full_speed = self.rate >= self.configured_rate
        self.configured_rate = ceiling
        self.rate = ceiling if at_full_speed else min(self.rate, ceiling)

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


def shared_limiter(vendor: str, conn_id: str, rate: float, *, share: float | None = None) -> RateLimiter:
    """One limiter per connection in this process, so concurrent tasks and threads share a budget.

    A limiter that follows the server keeps what it learned for the next hook of the connection.

    :param vendor: The vendor's name (part of the key).
    :param conn_id: The Airflow connection (part of the key).
    :param rate: Requests per second to start at; a different rate replaces the shared limiter.
    :param share: As for :class:`RateLimiter`; a different share replaces the shared limiter too.
    """
    with _SHARED_LOCK:
        limiter = _SHARED.get((vendor, conn_id))
        if limiter is None or limiter.requested_rate != rate or limiter.share != share:
            limiter = RateLimiter(rate, share=share)
            _SHARED[(vendor, conn_id)] = limiter
        return limiter
