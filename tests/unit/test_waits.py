from __future__ import annotations

import random

import pytest

from airflow_provider_crm.transport.waits import (
    RetrySettings,
    backoff_delay,
    header_wait,
    parse_reset,
    parse_retry_after,
)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_reset_header_reads_delay_epoch_seconds_and_millis() -> None:
    assert parse_reset("12") == 12.0
    assert parse_reset("1700000030", now=1700000000.0) == pytest.approx(30.0)
    assert parse_reset("1700000030000", now=1700000000.0) == pytest.approx(30.0)
    assert parse_reset("1600000000", now=1700000000.0) == 0.0
    assert parse_reset("n/a") is None


def test_retry_after_wins_over_reset() -> None:
    assert header_wait({"Retry-After": "3", "x-ratelimit-reset": "50"}) == 3.0
    assert header_wait({"x-ratelimit-reset": "50"}) == 50.0
    assert header_wait({}) is None


def test_backoff_grows_is_jittered_and_capped() -> None:
    settings = RetrySettings(backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    delays = [backoff_delay(n, settings, rng) for n in range(1, 8)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(8.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)
