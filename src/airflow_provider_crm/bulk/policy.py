"""What a rejected record means for the task: ``fail``, ``warn`` or ``skip``, plus a reject ratio.

- ``fail`` (default): stop sending at the first rejected record and fail the task;
- ``warn``: log each rejected record and carry on;
- ``skip``: carry on quietly.

Whatever the choice, the task fails when more than ``max_reject_ratio`` of the records were
rejected, always when every record was rejected (a run that wrote nothing is never green), and
whenever a record is still owed: one refused for a reason that can pass is not done, so the task
fails and its retry sends it again (``max_reject_ratio`` tolerates refusals for good only).

A rejection is either for good (the vendor or the validation refused the record: sending it again
changes nothing) or "retry later" (:func:`retry_later`: 5xx, timeout, lost connection, a rate limit
past its budget). A task retry sends the second kind again, so the error says whether a retry can
pass at all (:attr:`BulkRejectedError.retryable`), which the task retry policy reads.
"""

from __future__ import annotations

import logging
from typing import Literal

from airflow_provider_crm.bulk.ledger import WRITTEN, Outcome
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmConfigurationError,
    CrmError,
    CrmOutcomeUnknownError,
    CrmValidationError,
)

log = logging.getLogger(__name__)

OnRecordError = Literal["fail", "warn", "skip"]

TRANSIENT_STATUSES = frozenset({408, 423, 425, 429})
"""4xx answers that say "not now" rather than "never": timeout, locked, too early, rate limited."""


def retry_later(error: BaseException) -> bool:
    """Whether a record refused with ``error`` can pass when sent again later.

    No for bad input and configuration, for 4xx answers other than :data:`TRANSIENT_STATUSES`, for
    business errors the vendor named inside a 2xx (MicroBase ``ok: false`` with an ``error`` code)
    and for an unknown outcome the hook could not check (:class:`CrmOutcomeUnknownError`: resending
    could duplicate the record, a person must look). Yes for 5xx, the transient 4xx, a connection
    lost or timed out (the idempotent paths and the external-id lookup make resending safe), and
    any other failure that names no refusal — MicroBase's ``ok: false`` without a code is one (its
    framework answers so for an operation that failed on an error carrying no code, such as a
    database failure; whether that passes later is not documented, and the update is safe to repeat).
    """
    if isinstance(error, (CrmValidationError, CrmConfigurationError, CrmOutcomeUnknownError)):
        return False
    if isinstance(error, CrmApiError):
        status = error.status or 0
        if status < 400:
            return error.code is None  # a business error inside a 2xx: for good when the vendor named it
        return status >= 500 or status in TRANSIENT_STATUSES
    return isinstance(error, CrmError)


class BulkRejectedError(CrmError):
    """The run rejected more records than its policy allows.

    ``retry_later`` counts the rejections that can pass on a retry; ``retryable`` says whether a
    retry that writes all of them would satisfy the policy (if not, retrying is pointless).
    """

    def __init__(
        self, message: str, *, rejected: int, total: int, retry_later: int = 0, retryable: bool = False
    ) -> None:
        self.rejected = rejected
        self.total = total
        self.retry_later = retry_later
        self.retryable = retryable
        super().__init__(message)


class ErrorPolicy:
    def __init__(self, on_record_error: str = "fail", max_reject_ratio: float = 0.0) -> None:
        if on_record_error not in ("fail", "warn", "skip"):
            raise ValueError(f"on_record_error must be 'fail', 'warn' or 'skip', not {on_record_error!r}")
        if not 0.0 <= float(max_reject_ratio) <= 1.0:
            raise ValueError(f"max_reject_ratio must be between 0 and 1, not {max_reject_ratio!r}")
        self.on_record_error = on_record_error
        self.max_reject_ratio = float(max_reject_ratio)
        self.first_rejection: Outcome | None = None
        self.carried: Outcome | None = None
        """The first rejection of an earlier try, still standing; it keeps the error's reason."""
        self.stop_sending = False

    @property
    def fail_fast(self) -> bool:
        return self.on_record_error == "fail"

    @property
    def first(self) -> Outcome | None:
        """The rejection the error names: an earlier try's first one while it stands, else this try's."""
        return self.carried or self.first_rejection

    def on_outcome(self, outcome: Outcome) -> None:
        """Note one outcome; sets :attr:`stop_sending` when the run should send no more."""
        if not outcome.rejected:
            if self.carried is not None and self.carried.index == outcome.index and outcome.action in WRITTEN:
                self.carried = None  # resent and written: it no longer explains anything
            return
        if self.first_rejection is None:
            self.first_rejection = outcome
        if self.on_record_error == "warn":
            log.warning("record %s rejected: %s %s", outcome.key, outcome.error_code, outcome.error_message)
        self.stop_sending = self.stop_sending or self.fail_fast

    def _breaks(self, rejected: int, total: int) -> bool:
        if total == 0 or rejected == 0:
            return False
        return rejected >= total or self.fail_fast or rejected / total > self.max_reject_ratio

    def check(self, *, rejected: int, total: int, retry_later: int = 0) -> None:
        """Raise :class:`BulkRejectedError` when the rejections break the policy or records are still owed.

        Records refused for a reason that can pass are not done, whatever ``max_reject_ratio`` allows:
        the task fails so that its retry sends them again.
        """
        over = self._breaks(rejected, total)
        if not over and not retry_later:
            return
        first = self.first
        example = f" First: {first.key}: {first.error_code} {first.error_message}" if first else ""
        retryable = not self._breaks(rejected - retry_later, total)
        if not over:
            hint = (
                f" The other {rejected - retry_later} rejection(s) are within max_reject_ratio; a task retry "
                "sends just the owed records again."
            )
        elif retry_later:
            hint = (
                f" {retry_later} of them were refused for a reason that can pass (server error, timeout, "
                "rate limit, lost connection): a task retry sends them again."
            )
            if not retryable:
                hint += " The others were refused for good, so a retry cannot pass the policy."
        else:
            hint = " Every rejection is for good (the vendor or the validation refused it): a retry cannot pass."
        if rejected >= total:
            message = f"every record was rejected ({rejected} of {total})."
        elif self.fail_fast:
            message = (
                f"{rejected} record(s) rejected and on_record_error='fail'; later records were not sent "
                "(see the ledger and dead-letter file)."
            )
        elif over:
            message = (
                f"{rejected} of {total} records rejected ({rejected / total:.1%}), above "
                f"max_reject_ratio={self.max_reject_ratio:.1%}."
            )
        else:
            message = (
                f"{retry_later} of {total} records are not written yet: they were refused for a reason that "
                "can pass (server error, timeout, rate limit, lost connection)."
            )
        raise BulkRejectedError(
            f"{message}{hint}{example}",
            rejected=rejected,
            total=total,
            retry_later=retry_later,
            retryable=retryable,
        )
