"""Progress lines of a bulk run, with a fake clock: what they say and when they say it."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_crm.bulk.progress_log import ProgressLog, summary_line


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_says_how_far_how_fast_and_how_long_still() -> None:
    clock, done = FakeClock(), [0]
    progress = ProgressLog(60, lambda: done[0], expected=1_000, rate_limited=lambda: 2, clock=clock)
    clock.now += 5
    done[0] = 250
    expected = "progress: 250 of 1,000 records (25.0%), 50.0 records/s, 2 429s waited out, about 15s left"
    assert progress.line() == expected
    clock.now += 100
    done[0] = 900
    assert progress.line().endswith("8.6 records/s, 2 429s waited out, about 12s left")


def test_a_resumed_try_counts_its_own_rate_and_an_unknown_total_has_no_time_left() -> None:
    clock, done = FakeClock(), [4_000]
    progress = ProgressLog(60, lambda: done[0], clock=clock)
    clock.now += 200
    done[0] = 10_000
    assert progress.line() == "progress: 10,000 records, 30.0 records/s, 0 429s waited out"


def test_time_left_reads_in_minutes_and_hours() -> None:
    clock, done = FakeClock(), [0]
    progress = ProgressLog(60, lambda: done[0], expected=1_000_000, clock=clock)
    clock.now += 60
    done[0] = 6_000
    assert progress.line().endswith("about 2h 45m left")
    done[0] = 990_000
    assert progress.line().endswith("about 1s left")


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.message for record in caplog.records if record.message.startswith("progress:")]


def test_lines_come_from_a_thread_at_the_interval_until_the_run_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_crm.bulk.progress_log")
    done = [1]
    deadline = time.monotonic() + 30
    with ProgressLog(0.05, lambda: done[0], expected=10):
        while len(progress_lines(caplog)) < 3 and time.monotonic() < deadline:
            done[0] = len(progress_lines(caplog)) + 1
            time.sleep(0.01)
    lines = progress_lines(caplog)
    assert len(lines) >= 3 and lines[0].startswith("progress: 1 of 10 records")
    time.sleep(0.2)
    assert progress_lines(caplog) == lines, "no line after the run ended"


def test_the_summary_line_names_every_action() -> None:
    line = summary_line(1_200, 75.0, {"created": 1_000, "unchanged": 190, "rejected": 10, "updated": 0}, 3)
    assert line == (
        "done: 1,200 records in 1m 15s (16.0 records/s): created 1,000, rejected 10, unchanged 190; 3 429s waited out"
    )


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        ProgressLog(0, lambda: 0)
