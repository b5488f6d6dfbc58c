"""The bulk-job poll policy on its own: which job to ask about, how long to wait, what a status means."""

from __future__ import annotations

import pytest

from airflow_provider_crm.bulk.job_polling import (
    BulkJobWatch,
    JobDurationEstimate,
    JobState,
    PollSchedule,
    job_from_batches,
    job_state,
)
from airflow_provider_crm.models.kustomer_bulk import BulkBatch, BulkItemResult, BulkJob


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


# -- reading a job's batches, and how long jobs take ----------------------------------------------


def batch(status: str, *, ok: int | None = None, failed: int | None = None, refs: tuple[str, ...] = ()) -> BulkBatch:
    results = tuple(BulkItemResult(client_ref=ref, outcome="ok", status="created", object_id=ref) for ref in refs)
    return BulkBatch(status=status, success_count=ok, failure_count=failed, results=results)


@pytest.mark.parametrize(
    ("batches", "expected"),
    [
        ([batch("complete", ok=20, failed=5), batch("complete", ok=25)], "complete"),
        ([batch("complete", refs=tuple(f"r{n}" for n in range(50)))], "complete"),  # results, no counts
        ([batch("complete", ok=25), batch("scheduled"), batch("queued")], "running"),
        ([batch("complete", ok=25), batch("complete", ok=20)], None),  # 45 of 50 listed: batches still to come
        ([batch("complete"), batch("complete", ok=25)], None),  # neither counts nor results: cannot tell
        ([], None),
        ([batch("complete", ok=25), batch("failed")], None),  # undocumented failure: the job's status decides
    ],
)
def test_a_batches_answer_shows_the_job_done_only_when_it_accounts_for_every_item(
    batches: list[BulkBatch], expected: str | None
) -> None:
    found = job_from_batches("j1", batches, 50)

    assert (found.status if found else None) == expected
    if found is not None:
        assert (found.id, found.batches_total) == ("j1", len(batches))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_jobs(estimate: JobDurationEstimate, durations: list[float], clock: FakeClock) -> list[int]:
    """Reads each job takes when read first at the estimate, then every ``first`` seconds, one after another."""
    reads = []
    for duration in durations:
        submitted = clock.now
        clock.now += estimate.first_wait(clock.now - submitted)
        count, waiting_at = 1, None
        while clock.now - submitted < duration:
            waiting_at = clock.now - submitted
            clock.now += estimate.schedule.first
            count += 1
        estimate.observe(clock.now - submitted, waiting_at)
        reads.append(count)
    return reads


def test_the_first_read_of_a_job_comes_when_this_runs_jobs_are_usually_done() -> None:
    clock = FakeClock()
    estimate = JobDurationEstimate(PollSchedule(first=0.25, longest=10.0))
    assert estimate.seconds == 0.25, "nothing learnt yet: the schedule's first wait"

    reads = run_jobs(estimate, [2.0] * 10, clock)

    assert reads[0] == 8, "the first job is read every 0.25 s until done"
    assert sum(reads[1:]) <= 9 + 2 and reads[-5:] == [1] * 5, reads
    assert 2.0 <= estimate.seconds <= 2.25
    assert estimate.first_wait(0.5) == pytest.approx(estimate.seconds - 0.5), "time already waited counts"
    assert estimate.first_wait(60.0) == 0.0


def test_jobs_getting_slower_raise_the_estimate_and_it_stays_within_the_schedule() -> None:
    clock = FakeClock()
    estimate = JobDurationEstimate(PollSchedule(first=0.5, longest=4.0), kept=5)
    run_jobs(estimate, [1.0] * 5, clock)
    settled = estimate.seconds

    reads = run_jobs(estimate, [3.0] * 8, clock)

    assert settled == pytest.approx(1.0, abs=0.25)
    assert reads[-1] == 1 and 3.0 <= estimate.seconds <= 3.5, (reads, estimate.seconds)
    run_jobs(estimate, [60.0] * 5, clock)
    assert estimate.seconds == 4.0, "never past the longest wait"
    with pytest.raises(ValueError, match="at least one job"):
        JobDurationEstimate(kept=0)
