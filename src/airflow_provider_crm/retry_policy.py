"""A task retry policy for Airflow 3.3+ that knows which CRM failures a retry can fix.

- permanent errors fail at once: bad input (validation), bad configuration, 400/401/403/404/409/422,
  MicroBase business errors (``ok: false`` with an ``error`` code; one without a code names no
  refusal and is left to the task's retries), and a create whose outcome is unknown (retrying could
  duplicate the record);
- a bulk run that broke its error policy fails at once when a retry could not pass it (its records
  were refused for good, e.g. by validation), and otherwise falls through to the task's retries,
  which send again the records refused for a reason that can pass;
- rate limits retry later: after the vendor's wait, and HubSpot's ``DAILY`` limit at the next
  reset (midnight in the account's time zone);
- everything else falls through to the task's own ``retries`` / ``retry_delay``.

Use ``**crm_retry_kwargs()`` in ``default_args`` or an operator's arguments: on Airflow 3.3+ it
sets ``retry_policy``; on older 3.x it adds nothing and the operators behave as before.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from airflow_provider_crm.bulk.ids import TooManyIdsError
from airflow_provider_crm.bulk.policy import BulkRejectedError
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmConfigurationError,
    CrmError,
    CrmOutcomeUnknownError,
    CrmRateLimitError,
    CrmValidationError,
)

PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 409, 422})
DAILY_RESET_MARGIN = dt.timedelta(minutes=1)
RATE_LIMIT_FALLBACK = dt.timedelta(seconds=60)

try:
    from airflow.sdk import RetryDecision, RetryPolicy
except ImportError:  # Airflow < 3.3 has no retry policies
    RetryDecision = RetryPolicy = None  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from airflow.sdk import Context


def _crm_error(exception: BaseException) -> CrmError | None:
    """The CRM error behind an exception, following ``__cause__`` chains."""
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        if isinstance(current, CrmError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def decide(
    exception: BaseException, *, daily_reset_timezone: str = "UTC", now: dt.datetime | None = None
) -> tuple[str, dt.timedelta | None, str | None]:
    """``("fail" | "retry" | "default", delay, reason)`` for an exception; independent of Airflow."""
    error = _crm_error(exception)
    if error is None:
        return "default", None, None
    if isinstance(error, BulkRejectedError):
        if error.retryable:
            return "default", None, None
        return "fail", None, f"permanent: {error.rejected} of {error.total} records refused for good"
    if isinstance(error, TooManyIdsError):
        return "fail", None, "permanent: more ids than push_ids puts in an XCom"
    if isinstance(error, CrmRateLimitError):
        if error.code == "DAILY":
            zone = ZoneInfo(daily_reset_timezone)
            current = (now or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
            midnight = dt.datetime.combine(current.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
            return "retry", midnight - current + DAILY_RESET_MARGIN, f"{error.vendor} daily limit spent"
        delay = dt.timedelta(seconds=error.retry_after) if error.retry_after else RATE_LIMIT_FALLBACK
        return "retry", delay, f"{error.vendor} rate limit"
    if isinstance(error, (CrmValidationError, CrmConfigurationError)):
        return "fail", None, f"permanent: {type(error).__name__}"
    if isinstance(error, CrmOutcomeUnknownError):
        return "fail", None, "a write's outcome is unknown; retrying could duplicate it"
    if isinstance(error, CrmApiError):
        status = error.status or 0
        named = status < 400 and error.code is not None  # a business error the vendor named inside a 2xx
        if status in PERMANENT_STATUSES or named:
            return "fail", None, f"permanent: {error.vendor} HTTP {status} {error.code or ''}".strip()
    return "default", None, None


if RetryPolicy is not None:

    class CrmRetryPolicy(RetryPolicy):
        """Retry policy for CRM operators; see the module docstring."""

        def __init__(self, daily_reset_timezone: str = "UTC") -> None:
            ZoneInfo(daily_reset_timezone)  # refuse an unknown zone when the DAG is parsed
            self.daily_reset_timezone = daily_reset_timezone

        def evaluate(
            self, exception: BaseException, try_number: int, max_tries: int, context: Context | None = None
        ) -> Any:
            action, delay, reason = decide(exception, daily_reset_timezone=self.daily_reset_timezone)
            if action == "fail":
                return RetryDecision.fail(reason=reason)
            if action == "retry":
                return RetryDecision.retry(delay=delay, reason=reason)
            return RetryDecision.default()

        def serialize(self) -> dict[str, Any]:
            return {"daily_reset_timezone": self.daily_reset_timezone}

        @classmethod
        def deserialize(cls, data: dict[str, Any]) -> CrmRetryPolicy:
            return cls(**data)


def crm_retry_kwargs(daily_reset_timezone: str = "UTC") -> dict[str, Any]:
    """``{"retry_policy": CrmRetryPolicy(...)}`` on Airflow 3.3+, else ``{}``."""
    if RetryPolicy is None:
        return {}
    return {"retry_policy": CrmRetryPolicy(daily_reset_timezone)}
