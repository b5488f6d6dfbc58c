"""The bulk-job poll policy on its own: which job to ask about, how long to wait, what a status means."""

from __future__ import annotations

import pytest

from airflow_provider_crm.bulk.job_polling import BulkJobWatch, JobState, PollSchedule, job_state
from airflow_provider_crm.models.kustomer_bulk import BulkJob


def job(job_id: str, status: str | None, done_batches: int | None = None, *, completed: bool | None = None) -> BulkJob:
    return BulkJob(id=job_id, status=status, batches_complete=done_batches, batches_total=4, completed=completed)


@pytest.mark.parametrize(
    ("status", "completed", "expected"),
    [
        ("complete", None, JobState.DONE),
        (None, True, JobState.DONE),  # only the ``completed`` flag given
        ("queued", None, JobState.WAITING),
        ("running", False, JobState.WAITING),
        ("paused", None, JobState.WAITING),  # undocumented: keep waiting (the deadline bounds it)
        (None, None, JobState.WAITING),
        ("failed", None, JobState.FAILED),  # undocumented too, but it names a failure: no point waiting
        ("Cancelled", None, JobState.FAILED),
    ],
)
def test_a_status_is_done_waiting_or_failed(status: str | None, completed: bool | None, expected: JobState) -> None:
    assert job_state(job("j1", status, completed=completed)) is expected


def test_the_wait_grows_while_nothing_changes_up_to_the_longest() -> None:
    schedule = PollSchedule(first=2.0, longest=10.0, growth=2.0)

    assert [schedule.wait(n) for n in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert schedule.wait(10_000) == 10.0, "no overflow however long a job sits"


@pytest.mark.parametrize(
    "arguments", [{"first": 0.0}, {"first": 5.0, "longest": 4.0}, {"growth": 0.5}, {"first": float("nan")}]
)
def test_a_schedule_that_cannot_work_is_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollSchedule(**arguments)


def test_jobs_are_followed_oldest_first_and_the_next_is_asked_about_at_once() -> None:
    watch = BulkJobWatch(["j1", "j2", "j1", "j3"], PollSchedule(first=1.0, longest=8.0, growth=2.0))
    assert watch.job_ids == ("j1", "j2", "j3"), "a repeated id is followed once"

    assert (watch.current, watch.record(job("j1", "queued", 0)), watch.wait()) == ("j1", JobState.WAITING, 1.0)
    assert (watch.record(job("j1", "queued", 0)), watch.wait()) == (JobState.WAITING, 2.0)
    assert (watch.record(job("j1", "queued", 0)), watch.wait()) == (JobState.WAITING, 4.0)
    assert (watch.record(job("j1", "running", 1)), watch.wait()) == (JobState.WAITING, 1.0), "progress: back to first"
    assert (watch.record(job("j1", "running", 2)), watch.wait()) == (JobState.WAITING, 1.0)
    assert (watch.record(job("j1", "complete", 4)), watch.wait()) == (JobState.DONE, 0.0)
    assert (watch.current, watch.completed, watch.pending) == ("j2", ("j1",), ("j2", "j3"))

    assert (watch.record(job("j2", "complete", 4)), watch.wait()) == (JobState.DONE, 0.0)
    assert (watch.record(job("j3", "running", 0)), watch.wait()) == (JobState.WAITING, 1.0), "a new job starts afresh"
    assert watch.record(job("j3", "complete", 4)) is JobState.DONE
    assert (watch.current, watch.completed, watch.pending) == (None, ("j1", "j2", "j3"), ())


def test_a_failed_job_stays_the_current_one() -> None:
    watch = BulkJobWatch(["j1", "j2"])

    assert watch.record(job("j1", "failed")) is JobState.FAILED
    assert (watch.current, watch.completed) == ("j1", ())


def test_an_answer_about_another_job_is_refused() -> None:
    watch = BulkJobWatch(["j1", "j2"])

    with pytest.raises(ValueError, match=r"'j2'.*'j1'"):
        watch.record(job("j2", "complete"))


@pytest.mark.parametrize("job_ids", [[], [""], ["  "], ["j1", None]])
def test_jobs_to_follow_must_be_named(job_ids: list[str]) -> None:
    with pytest.raises(ValueError, match="non-empty strings"):
        BulkJobWatch(job_ids)
