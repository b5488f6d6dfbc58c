"""What every vendor's writer shares: waiting out rate limits, a record's refusal, its key and fields."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from airflow_provider_crm.bulk.ledger import ERROR, INVALID, REJECTED, RETRY, Outcome
from airflow_provider_crm.bulk.policy import retry_later
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmConfigurationError,
    CrmError,
    CrmPermissionError,
    CrmRateLimitError,
    CrmValidationError,
)

RATE_LIMIT_ROUNDS = 20
"""How many times a record waits out a rate limit (after the transport's own retries) before it is
given up on; each round waits what the vendor asked, so a 429 slows the run, it doesn't drop records."""

T = TypeVar("T")

SYSTEMIC = (CrmAuthenticationError, CrmPermissionError, CrmConfigurationError)


class StillRateLimitedError(CrmError):
    """A record waited out the vendor's rate limit :data:`RATE_LIMIT_ROUNDS` times and gave up."""


def waiting_out_rate_limits(call: Callable[[], T]) -> T:
    """Run ``call``, sleeping out each 429 the transport gave up on; HubSpot's ``DAILY`` propagates."""
    for _ in range(RATE_LIMIT_ROUNDS):
        try:
            return call()
        except CrmRateLimitError as exc:
            if exc.code == "DAILY":
                raise
            time.sleep(exc.retry_after or 1.0)
    raise StillRateLimitedError("still rate limited after waiting; replay it from the dead-letter file")


def refused_outcome(item: Item, action: str, error: CrmError) -> Outcome:
    status = RETRY if retry_later(error) else ERROR  # "retry": a task retry sends it again
    return Outcome(
        item.index, item.key, action, status=status, error_code=error_code(error), error_message=str(error)[:1000]
    )


def error_code(error: CrmError) -> str:
    if isinstance(error, StillRateLimitedError):
        return "rate_limited"
    if isinstance(error, CrmApiError):
        return error.code or (f"http_{error.status}" if error.status else "api_error")
    return type(error).__name__


def known_fields(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(record) - set(names))
    if unknown:
        raise CrmValidationError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(names)}")
    return {name: record[name] for name in names if record.get(name) is not None}


def record_key(record: dict[str, Any], field: str, index: int) -> str:
    value = record.get(field)
    return str(value) if value not in (None, "") else f"#{index}"


def not_found_outcome(item: Item, error_code: str, message: str) -> Outcome:
    """A dry run's verdict on a record whose target does not exist: the real run would be refused."""
    return Outcome(item.index, item.key, INVALID, status="error", error_code=error_code, error_message=message)


class PerRecordWriter:
    """Writes one record per request; turns each record's error into its outcome."""

    batch_size = 1

    def write(self, items: list[Item]) -> list[Outcome]:
        return [self._guarded(item, self.write_one) for item in items]

    def preview(self, items: list[Item]) -> list[Outcome]:
        return [self._guarded(item, self.preview_one, refused=INVALID) for item in items]

    def write_one(self, item: Item) -> Outcome:
        raise NotImplementedError

    def preview_one(self, item: Item) -> Outcome:
        raise NotImplementedError

    def _guarded(self, item: Item, action: Callable[[Item], Outcome], refused: str = REJECTED) -> Outcome:
        """One record's outcome; systemic errors and a spent daily limit stop the run instead."""
        try:
            return waiting_out_rate_limits(lambda: action(item))
        except (*SYSTEMIC, CrmRateLimitError):
            raise
        except CrmError as exc:
            return refused_outcome(item, refused, exc)
