"""Rate-limit bookkeeping for the vendor emulators: a fixed window, and rolling windows alone or per key."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class FixedWindowCounter:
    """A budget of ``limit`` requests per fixed window, like an org-wide per-minute quota."""

    def __init__(self, limit: int, window: float = 60.0, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._start = clock()
        self._used = 0

    def _roll(self) -> None:
        now = self._clock()
        if now - self._start >= self.window:
            self._start = now
            self._used = 0

    def hit(self) -> None:
        """Count one request."""
        self._roll()
        self._used += 1

    def remaining(self) -> int:
        """Requests left in the current window."""
        self._roll()
        return max(0, self.limit - self._used)

    def reset_in(self) -> float:
        """Seconds until the window starts over."""
        self._roll()
        return max(0.0, self.window - (self._clock() - self._start))

    def clear(self) -> None:
        """Start a fresh window."""
        self._start = self._clock()
        self._used = 0


class RollingWindow:
    """Times of counted events, so the count within the last ``seconds`` is exact."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._hits: deque[float] = deque()

    def used(self, seconds: float) -> int:
        """Events counted within the last ``seconds``."""
        horizon = self._clock() - seconds
        while self._hits and self._hits[0] <= horizon:
            self._hits.popleft()
        return len(self._hits)

    def wait(self, seconds: float) -> float:
        """Seconds until the oldest counted event leaves a window of ``seconds`` (all of it when none is)."""
        if not self._hits:
            return seconds
        return max(0.0, seconds - (self._clock() - self._hits[0]))

    def hit(self) -> None:
        """Count one event now."""
        self._hits.append(self._clock())

    def clear(self) -> None:
        """Forget all events."""
        self._hits.clear()


class SlidingWindowLimiter:
    """At most ``limit`` events per key within any ``window`` seconds."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, RollingWindow] = {}

    def acquire(self, key: str, limit: int, window: float) -> float | None:
        """Record an event and return ``None``, or return the seconds to wait when over the limit."""
        events = self._windows.setdefault(key, RollingWindow(self._clock))
        if events.used(window) >= limit:
            return events.wait(window)
        events.hit()
        return None

    def clear(self) -> None:
        """Forget all events."""
        self._windows.clear()
