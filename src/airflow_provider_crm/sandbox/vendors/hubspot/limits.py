"""HubSpot's two request budgets: a rolling burst window per app and a daily count per account.

Private-app calls use both; OAuth calls have their own burst window and no daily limit, so
their answers carry no daily headers. Budgets can be reported only (the default: the nominal
Professional-tier numbers below) or enforced with real 429s. A request counts when it reaches
the emulator; refused (429) and unauthenticated requests do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from airflow_provider_crm.sandbox.common.ratelimits import RollingWindow
from airflow_provider_crm.sandbox.vendors.hubspot.errors import DAILY, TEN_SECONDLY_ROLLING

PRIVATE_APP = "private"
OAUTH_APP = "oauth"

NOMINAL_BURST = {PRIVATE_APP: 190, OAUTH_APP: 110}
NOMINAL_DAILY = 650_000

MAX_HEADER = "X-HubSpot-RateLimit-Max"
REMAINING_HEADER = "X-HubSpot-RateLimit-Remaining"
INTERVAL_HEADER = "X-HubSpot-RateLimit-Interval-Milliseconds"
DAILY_HEADER = "X-HubSpot-RateLimit-Daily"
DAILY_REMAINING_HEADER = "X-HubSpot-RateLimit-Daily-Remaining"


@dataclass(frozen=True)
class Budget:
    """The limits in force: ``None`` means reported at the nominal value but not enforced."""

    burst: int | None
    interval_ms: int
    daily: int | None

    def burst_max(self, app_kind: str) -> int:
        """The burst limit reported for an app kind."""
        return self.burst if self.burst is not None else NOMINAL_BURST[app_kind]

    def daily_max(self) -> int:
        """The daily limit reported."""
        return self.daily if self.daily is not None else NOMINAL_DAILY


class DailyCounter:
    """Requests counted since midnight UTC (HubSpot resets at the account's midnight)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._day = self._today()
        self._used = 0

    def _today(self) -> str:
        return datetime.fromtimestamp(self._clock(), tz=timezone.utc).date().isoformat()

    def used(self) -> int:
        """Requests counted today."""
        today = self._today()
        if today != self._day:
            self._day, self._used = today, 0
        return self._used

    def hit(self) -> None:
        """Count one request."""
        self.used()
        self._used += 1

    def clear(self) -> None:
        """Start the day over."""
        self._day, self._used = self._today(), 0


class HubSpotLimits:
    """Burst windows per app kind plus the daily counter; callers hold the app lock."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self._windows = {kind: RollingWindow(monotonic) for kind in NOMINAL_BURST}
        self._daily = DailyCounter(wall)

    def exceeded(self, app_kind: str, budget: Budget) -> str | None:
        """The policy an extra request would break (``DAILY`` first), or ``None``."""
        if app_kind == PRIVATE_APP and budget.daily is not None and self._daily.used() >= budget.daily:
            return DAILY
        if budget.burst is not None and self._windows[app_kind].used(budget.interval_ms / 1000) >= budget.burst:
            return TEN_SECONDLY_ROLLING
        return None

    def hit(self, app_kind: str) -> None:
        """Count one request against the app's budgets."""
        self._windows[app_kind].hit()
        if app_kind == PRIVATE_APP:
            self._daily.hit()

    def headers(self, app_kind: str, budget: Budget) -> dict[str, str]:
        """The ``X-HubSpot-RateLimit-*`` headers for an answer to this app kind."""
        burst_max = budget.burst_max(app_kind)
        used = self._windows[app_kind].used(budget.interval_ms / 1000)
        headers = {
            MAX_HEADER: str(burst_max),
            REMAINING_HEADER: str(max(0, burst_max - used)),
            INTERVAL_HEADER: str(budget.interval_ms),
        }
        if app_kind == PRIVATE_APP:
            daily_max = budget.daily_max()
            headers[DAILY_HEADER] = str(daily_max)
            headers[DAILY_REMAINING_HEADER] = str(max(0, daily_max - self._daily.used()))
        return headers

    def clear(self) -> None:
        """Forget all counted requests."""
        for window in self._windows.values():
            window.clear()
        self._daily.clear()
