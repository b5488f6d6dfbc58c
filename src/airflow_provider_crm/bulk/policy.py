"""What a rejected record means for the task: ``fail``, ``warn`` or ``skip``, plus a reject ratio.

- ``fail`` (default): stop sending at the first rejected record and fail the task;
- ``warn``: log each rejected record and carry on;
- ``skip``: carry on quietly.

Whatever the choice, the task fails when more than ``max_reject_ratio`` of the records were
rejected, and always when every record was rejected: a run that wrote nothing is never green.
"""

from __future__ import annotations

import logging
from typing import Literal

from airflow_provider_crm.bulk.ledger import Outcome
from airflow_provider_crm.errors import CrmError

log = logging.getLogger(__name__)

OnRecordError = Literal["fail", "warn", "skip"]


class BulkRejectedError(CrmError):
    """The run rejected more records than its policy allows."""

    def __init__(self, message: str, *, rejected: int, total: int) -> None:
        self.rejected = rejected
        self.total = total
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
        self.stop_sending = False

    @property
    def fail_fast(self) -> bool:
        return self.on_record_error == "fail"

    def on_outcome(self, outcome: Outcome) -> None:
        """Note one outcome; sets :attr:`stop_sending` when the run should send no more."""
        if not outcome.rejected:
            return
        if self.first_rejection is None:
            self.first_rejection = outcome
        if self.on_record_error == "warn":
            log.warning("record %s rejected: %s %s", outcome.key, outcome.error_code, outcome.error_message)
        self.stop_sending = self.stop_sending or self.fail_fast

    def check(self, *, rejected: int, total: int) -> None:
        """Raise :class:`BulkRejectedError` when the run's rejections break the policy."""
        if total == 0 or rejected == 0:
            return
        first = self.first_rejection
        example = f" First: {first.key}: {first.error_code} {first.error_message}" if first else ""
        if rejected >= total:
            raise BulkRejectedError(
                f"every record was rejected ({rejected} of {total}).{example}", rejected=rejected, total=total
            )
        if self.fail_fast:
            raise BulkRejectedError(
                f"{rejected} record(s) rejected and on_record_error='fail'; later records were not sent "
                f"(see the ledger and dead-letter file).{example}",
                rejected=rejected,
                total=total,
            )
        if rejected / total > self.max_reject_ratio:
            raise BulkRejectedError(
                f"{rejected} of {total} records rejected ({rejected / total:.1%}), above "
                f"max_reject_ratio={self.max_reject_ratio:.1%}.{example}",
                rejected=rejected,
                total=total,
            )
