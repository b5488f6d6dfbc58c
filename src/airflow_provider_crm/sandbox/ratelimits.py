"""Rate-limit bookkeeping shared by vendor emulators (a fixed window and a sliding window)."""

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


class SlidingWindowLimiter:
    """At most ``limit`` events per key within any ``window`` seconds."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def acquire(self, key: str, limit: int, window: float) -> float | None:
        """Record an event and return ``None``, or return the seconds to wait when over the limit."""
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= window:
            events.popleft()
        if len(events) >= limit:
            return max(0.0, window - (now - events[0])) if events else window
        events.append(now)
        return None

    def clear(self) -> None:
        """Forget all events."""
        self._events.clear()
