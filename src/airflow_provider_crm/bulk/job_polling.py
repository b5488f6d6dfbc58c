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
Needs neither Airflow nor the network; the caller owns the clock and the requests.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_crm.models.kustomer_bulk import BulkJob

DEFAULT_FIRST_WAIT = 1.0
"""Seconds before asking about a job again the first time it is not complete: a small job is seen complete soon."""
DEFAULT_LONGEST_WAIT = 10.0
"""The ceiling of the growing wait: one request per 10 s is 6 a minute of the org's shared budget (300 or 1,000)."""
DEFAULT_GROWTH = 1.5
DEFAULT_TIMEOUT = 6 * 3600.0
"""How long jobs may take, in seconds, unless the caller says otherwise (100,000 records are 1,000 jobs)."""

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
