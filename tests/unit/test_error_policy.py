"""The error policy: what ``max_reject_ratio`` tolerates, and what always fails the task."""

from __future__ import annotations

import pytest

from airflow_provider_crm.bulk.policy import BulkRejectedError, ErrorPolicy


def test_refusals_for_good_within_the_ratio_pass() -> None:
    ErrorPolicy("warn", 0.05).check(rejected=5, total=100, retry_later=0)


def test_a_record_still_owed_fails_the_task_whatever_the_ratio() -> None:
    with pytest.raises(BulkRejectedError, match="1 of 100 records are not written yet") as caught:
        ErrorPolicy("skip", 0.5).check(rejected=3, total=100, retry_later=1)
    assert (caught.value.retry_later, caught.value.retryable) == (1, True), "a retry that writes it passes"


def test_owed_records_over_the_ratio_of_good_refusals_are_not_retryable() -> None:
    with pytest.raises(BulkRejectedError) as caught:
        ErrorPolicy("warn", 0.01).check(rejected=10, total=100, retry_later=2)
    assert caught.value.retryable is False, "8 refusals for good already break the 1% ratio"
