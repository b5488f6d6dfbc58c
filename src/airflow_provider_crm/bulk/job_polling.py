"""When to ask about a Kustomer bulk job again, and what its status means: one policy for worker and triggerer.

Kustomer documents a job's ``status`` as ``queued`` → ``running`` → ``complete``
(developer.kustomer.com/api/core-resources/get-bulk-operation-by-id; the bulk-operations guide:
"poll each id until complete") and no failed state. So a status that names a failure
(``failed``, ``error``, ``cancelled``…) is read as the job's end without results, and any other
word as still working: an undocumented status neither ends the wait early nor keeps it past the
deadline.

Jobs are followed oldest first: only the first unfinished job is asked about, and the next one as
soon as it is complete. Jobs submitted together finish in about that order, so this costs one
request per wait instead of one per job, which matters under an org-wide per-minute budget shared
with every other integration. Were Kustomer to finish them out of order, nothing is lost: a job
already complete answers so at its first poll. While a job shows no progress (same status, same
``batches.complete``) the wait grows, up to a ceiling; progress brings it back to the first wait.

A worker waiting for its own jobs reads a job's batches (``GET /v1/bulk/{id}/batches``) instead of
its status: the answer that shows the job done also holds every item's result, so a job costs a
submit and one read when that read comes after the job finished. :func:`job_from_batches` says
when a batches answer shows that, and :class:`JobDurationEstimate` learns how long this run's jobs
take, so the first read of a new job comes when a typical job is done.

Needs neither Airflow nor the network; the caller owns the clock and the requests.
"""

from __future__ import annotations

import enum
import statistics
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_crm.models.kustomer_bulk import JOB_COMPLETE, BulkBatch, BulkJob

DEFAULT_FIRST_WAIT = 1.0
"""Seconds before asking about a job again the first time it is not complete: a small job is seen complete soon."""
DEFAULT_LONGEST_WAIT = 10.0
"""The ceiling of the growing wait: one request per 10 s is 6 a minute of the org's shared budget (300 or 1,000)."""
DEFAULT_GROWTH = 1.5
DEFAULT_TIMEOUT = 6 * 3600.0
"""How long jobs may take, in seconds, unless the caller says otherwise (100,000 records are 1,000 jobs)."""

DEFAULT_DURATIONS_KEPT = 25
"""Finished jobs the estimate of a job's duration is taken from: the most recent ones."""

_FAILED_WORDS = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled", "aborted"})


class JobState(enum.Enum):
    """What one answer about a job means."""

    WAITING = "waiting"
    """Queued, running, or a status Kustomer does not document: ask again later."""
    DONE = "done"
    """Complete: its batches hold the results."""
    FAILED = "failed"
    """The status names a failure: the job ended, and will not complete."""


def job_state(job: BulkJob) -> JobState:
    """Read a job's answer: done, failed, or still waiting.

    :param job: The job as ``GET /v1/bulk/{id}`` answered it.
    """
    if job.done:
        return JobState.DONE
    if (job.status or "").strip().lower() in _FAILED_WORDS:
        return JobState.FAILED
    return JobState.WAITING


def job_from_batches(job_id: str, batches: Sequence[BulkBatch], items: int) -> BulkJob | None:
    """The job as its batches show it: ``complete`` once every batch is complete and together they account
    for all ``items`` submitted, ``running`` while a batch is not complete; ``None`` when the answer cannot tell.

    Kustomer documents a batch's ``status`` as ``queued``, ``scheduled`` or ``complete``, with
    ``successCount``, ``failureCount`` and per-item ``results``
    (developer.kustomer.com/api/core-resources/get-bulk-operation-batches). It does not say whether
    every batch is listed from the start, so a list of complete batches accounting for fewer items
    than were sent is not taken as done: the caller asks ``GET /v1/bulk/{id}`` instead, as it does for
    an empty list, a batch whose status names a failure, and a complete batch with neither counts nor
    results.

    :param job_id: The job's id.
    :param batches: The job's batches as ``GET /v1/bulk/{id}/batches`` answered them.
    :param items: How many items the job was submitted with.
    """
    if not batches or any((batch.status or "").strip().lower() in _FAILED_WORDS for batch in batches):
        return None
    complete = [batch for batch in batches if batch.status == JOB_COMPLETE]
    if len(complete) < len(batches):
        return BulkJob(id=job_id, status="running", batches_complete=len(complete), batches_total=len(batches))
    counted = [_items_accounted(batch) for batch in batches]
    if any(count is None for count in counted) or sum(count or 0 for count in counted) < items:
        return None
    return BulkJob(id=job_id, status=JOB_COMPLETE, batches_complete=len(batches), batches_total=len(batches))


def _items_accounted(batch: BulkBatch) -> int | None:
    """Items a complete batch reports on: its success and failure counts, else its per-item results."""
    if batch.success_count is not None or batch.failure_count is not None:
        return (batch.success_count or 0) + (batch.failure_count or 0)
    return len(batch.results) if batch.results else None


class JobDurationEstimate:
    """How long this run's jobs take from submit to done, learnt from the jobs already finished.

    A job read too soon gives the middle between the last read that saw it unfinished and the one that
    saw it done; a job seen done at a first read made when the estimate said gives that time. A job
    first read later than that (its worker was busy with other jobs) says only that it took less, and
    teaches nothing. The estimate is the median of the recent figures, kept between the schedule's first
    and longest waits: read on time, a job gives the estimate back, so it holds steady; read too soon,
    it raises it. A job that finishes sooner than the estimate still costs one read, only some time.
    Safe to share between the threads of one writer.

    :param schedule: Bounds of the estimate (``first`` .. ``longest``), and the wait before anything is known.
    :param kept: How many recent jobs the median is taken over.
    :raises ValueError: When ``kept`` is not positive.
    """

    def __init__(self, schedule: PollSchedule | None = None, kept: int = DEFAULT_DURATIONS_KEPT) -> None:
        if kept < 1:
            raise ValueError(f"the estimate needs at least one job to learn from, got kept={kept!r}")
        self.schedule = schedule or PollSchedule()
        self._figures: deque[float] = deque(maxlen=kept)
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        """The expected submit-to-done time of a job: the schedule's first wait until a job has finished."""
        with self._lock:
            median = statistics.median(self._figures) if self._figures else self.schedule.first
        return min(self.schedule.longest, max(self.schedule.first, median))

    def first_wait(self, elapsed: float) -> float:
        """Seconds to wait before the first read of a job submitted ``elapsed`` seconds ago.

        :param elapsed: Seconds since the job was submitted (it may have waited behind other jobs).
        """
        return max(0.0, self.seconds - elapsed)

    def observe(self, done_at: float, waiting_at: float | None = None, *, read_late: bool = False) -> None:
        """Learn from a finished job.

        :param done_at: Seconds from its submit to the read that saw it done.
        :param waiting_at: Seconds from its submit to the last read that saw it unfinished, if any.
        :param read_late: Whether its first read came after the estimate said (then a first read seeing it
            done teaches nothing).
        """
        if waiting_at is None and read_late:
            return
        figure = done_at if waiting_at is None else (waiting_at + done_at) / 2
        with self._lock:
            self._figures.append(max(0.0, figure))


@dataclass(frozen=True)
class PollSchedule:
    """How long to wait between two questions about a job that is not complete.

    :param first: Seconds after the first answer without progress.
    :param longest: The most seconds to wait, however long the job shows no progress.
    :param growth: Factor applied to the wait after each further answer without progress.
    :raises ValueError: When ``first`` is not positive, ``longest`` below ``first`` or ``growth`` below 1.
    """

    first: float = DEFAULT_FIRST_WAIT
    longest: float = DEFAULT_LONGEST_WAIT
    growth: float = DEFAULT_GROWTH

    def __post_init__(self) -> None:
        if not self.first > 0:
            raise ValueError(f"the first wait must be positive, got {self.first!r}")
        if not self.longest >= self.first:
            raise ValueError(f"the longest wait ({self.longest!r}) must not be below the first ({self.first!r})")
        if not self.growth >= 1:
            raise ValueError(f"the growth factor must be at least 1, got {self.growth!r}")

    def wait(self, answers_without_progress: int) -> float:
        """Seconds to wait after ``answers_without_progress`` answers in a row showed nothing new (0: progress).

        :param answers_without_progress: Answers in a row that repeated the one before (0 after progress).
        """
        return min(self.longest, self.first * self.growth ** min(answers_without_progress, 64))


class BulkJobWatch:
    """Follows a run's jobs to the end, oldest first: which job to ask about, and how long to wait.

    :param job_ids: The jobs, in the order they were submitted (repeats are followed once).
    :param schedule: The waits between questions about a job that is not complete.
    :raises ValueError: With no job id, or one that is not a non-empty string.
    """

    def __init__(self, job_ids: Sequence[str], schedule: PollSchedule | None = None) -> None:
        ids = list(dict.fromkeys(job_ids))
        if not ids or not all(isinstance(job_id, str) and job_id.strip() for job_id in ids):
            raise ValueError(f"bulk jobs to follow must be non-empty strings, got {list(job_ids)!r}")
        self.job_ids: tuple[str, ...] = tuple(ids)
        self.schedule = schedule or PollSchedule()
        self._done = 0
        self._last_seen: tuple[str | None, int | None] | None = None
        self._unchanged = 0
        self._just_finished = False

    @property
    def current(self) -> str | None:
        """The job to ask about next; ``None`` once every job is complete."""
        return self.job_ids[self._done] if self._done < len(self.job_ids) else None

    @property
    def completed(self) -> tuple[str, ...]:
        """The jobs known to be complete, oldest first."""
        return self.job_ids[: self._done]

    @property
    def pending(self) -> tuple[str, ...]:
        """The jobs not known to be complete yet, :attr:`current` first."""
        return self.job_ids[self._done :]

    def record(self, job: BulkJob) -> JobState:
        """Take in the answer about :attr:`current`; a complete job moves the watch on to the next one.

        :param job: The job as ``GET /v1/bulk/{current}`` answered it.
        :raises ValueError: When the answer is about another job, or every job is complete already.
        """
        if job.id != self.current:
            raise ValueError(f"the answer is about job {job.id!r}, but the job being followed is {self.current!r}")
        state = job_state(job)
        seen = (job.status, job.batches_complete)
        self._unchanged = self._unchanged + 1 if seen == self._last_seen else 0
        self._last_seen = seen
        self._just_finished = state is JobState.DONE
        if self._just_finished:
            self._done += 1
            self._last_seen, self._unchanged = None, 0
        return state

    def wait(self) -> float:
        """Seconds before the next question: none right after a job completed, else the schedule's wait."""
        return 0.0 if self._just_finished else self.schedule.wait(self._unchanged)
