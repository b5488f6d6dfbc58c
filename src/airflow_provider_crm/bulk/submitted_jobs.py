"""The bulk jobs a deferrable task submitted, kept where a retry of the task finds them.

A deferrable bulk task submits every job from the worker, saves each job (its id and the input
positions of its records) right after Kustomer accepts it, and only then defers. Whatever happens
next (the worker dies before deferring, the trigger fires, the worker dies while reading results),
a retry of the task finds the saved jobs and collects them instead of submitting those records
again; records settled without a job (refused at submit, or found by lookup after a submit whose
answer was lost) are saved with their outcome. Once the ledger is written the plan is dropped, and
a later retry resumes as :mod:`~airflow_provider_crm.bulk.progress` says.

Where: Airflow 3.3's task state store (one value per task instance, kept across tries; positions are
stored as ranges, so 1,000 jobs of 100 records take about 60 KB, and workers are not refused past
the store's ``max_value_storage_bytes``), else a side file next to the ledger (``<ledger>.jobs.json``,
which a retry finds only when ``ledger_path`` does not change between tries). With neither, there is
nowhere a retry could look: the task polls in the worker instead of deferring.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Protocol

from airflow_provider_crm.bulk.ledger import Outcome

log = logging.getLogger(__name__)

STATE_KEY = "airflow_provider_crm.bulk.submitted_jobs"
RETENTION = timedelta(days=7)
SIDE_FILE_SUFFIX = ".jobs.json"


class ValueStore(Protocol):
    """The three calls of Airflow's task state store this module makes."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None: ...

    def delete(self, key: str) -> None: ...


class SideFileStore:
    """A :class:`ValueStore` in one JSON file (before Airflow 3.3): ``{key: value}``, rewritten on each save.

    :param path: The file, local or an object-storage URL.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        from airflow_provider_crm.bulk.files import open_path

        try:
            with open_path(self.path, "r") as handle:
                value = json.load(handle)
        except FileNotFoundError:
            return {}
        return value if isinstance(value, dict) else {}

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, else ``default``.

        :param key: The name of the value.
        :param default: What to return when there is none.
        """
        return self._read().get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        """Keep ``value`` under ``key``.

        :param key: The name of the value.
        :param value: A JSON value.
        :param retention: Ignored: the file stays until the plan is dropped.
        """
        from airflow_provider_crm.bulk.files import open_path

        values = {**self._read(), key: value}
        with open_path(self.path, "w") as handle:
            json.dump(values, handle)
            handle.flush()

    def delete(self, key: str) -> None:
        """Forget the value under ``key`` (the file is emptied, not removed: it may be an object-storage URL).

        :param key: The name of the value.
        """
        values = self._read()
        if key in values:
            from airflow_provider_crm.bulk.files import open_path

            del values[key]
            with open_path(self.path, "w") as handle:
                json.dump(values, handle)


def plan_store(context: Mapping[str, Any] | None, ledger_path: str | None) -> ValueStore | None:
    """Where a task's submitted jobs are saved: the task state store, else a side file by the ledger, else nowhere.

    :param context: The task's Airflow context.
    :param ledger_path: The task's ledger path (rendered), if any.
    """
    store = (context or {}).get("task_state_store")
    if store is not None:
        return store
    if ledger_path:
        return SideFileStore(ledger_path + SIDE_FILE_SUFFIX)
    return None


class SubmittedJobs:
    """The plan of a deferrable task: jobs (id → input positions) and records settled without a job.

    :param store: Where the plan is saved.
    """

    def __init__(self, store: ValueStore) -> None:
        self._store = store
        self._jobs: list[tuple[str, list[list[int]]]] = []
        self._job_of: dict[int, str] = {}
        self._settled: dict[int, Outcome] = {}

    @classmethod
    def load(cls, store: ValueStore) -> SubmittedJobs:
        """The plan an earlier try saved (empty when none).

        :param store: Where the plan is saved.
        """
        plan = cls(store)
        value = store.get(STATE_KEY) or {}
        for job_id, ranges in value.get("jobs") or []:
            plan._add_job(str(job_id), [[int(start), int(end)] for start, end in ranges])
        for saved in value.get("settled") or []:
            outcome = Outcome(**saved)
            plan._settled[outcome.index] = outcome
        if plan._jobs or plan._settled:
            log.info("found %d bulk job(s) submitted by an earlier try: collecting them", len(plan._jobs))
        return plan

    @property
    def job_ids(self) -> list[str]:
        """The jobs, in the order they were submitted."""
        return [job_id for job_id, _ in self._jobs]

    def knows(self, index: int) -> bool:
        """Whether the record at ``index`` was submitted, or settled without a job.

        :param index: The record's input position.
        """
        return index in self._job_of or index in self._settled

    def job_of(self, index: int) -> str | None:
        """The job that carried the record at ``index``.

        :param index: The record's input position.
        """
        return self._job_of.get(index)

    def settled(self, index: int) -> Outcome | None:
        """The outcome of a record settled without a job.

        :param index: The record's input position.
        """
        return self._settled.get(index)

    def add_job(self, job_id: str, indexes: Iterable[int]) -> None:
        """Note a job Kustomer accepted and save the plan at once.

        :param job_id: The job's id.
        :param indexes: The input positions of its records.
        """
        self._add_job(job_id, _ranges(indexes))
        self.save()

    def add_settled(self, outcomes: Iterable[Outcome]) -> None:
        """Note records settled without a job (and save the plan when there were any).

        :param outcomes: Their outcomes.
        """
        added = {outcome.index: outcome for outcome in outcomes}
        if added:
            self._settled.update(added)
            self.save()

    def _add_job(self, job_id: str, ranges: list[list[int]]) -> None:
        self._jobs.append((job_id, ranges))
        for start, end in ranges:
            self._job_of.update(dict.fromkeys(range(start, end + 1), job_id))

    def save(self) -> None:
        """Write the plan where a retry reads it."""
        value = {
            "jobs": [[job_id, ranges] for job_id, ranges in self._jobs],
            "settled": [asdict(outcome) for outcome in self._settled.values()],
        }
        self._store.set(STATE_KEY, value, retention=RETENTION)

    def drop(self) -> None:
        """Forget the plan once the ledger holds every record of it."""
        self._store.delete(STATE_KEY)


def _ranges(indexes: Iterable[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for index in sorted(indexes):
        if ranges and ranges[-1][1] == index - 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    return ranges
