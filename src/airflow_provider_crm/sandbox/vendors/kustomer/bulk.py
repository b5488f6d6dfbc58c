"""Kustomer bulk jobs in the emulator: accepted at once, processed batch by batch on the app's clock.

What Kustomer documents (developer.kustomer.com/docs/guides/bulk-operations,
/api/core-resources/get-bulk-operation-by-id, /api/core-resources/get-bulk-operation-batches, and the
"Bulk create" / "Bulk batch update" KObject operations of Kustomer's OpenAPI as shipped in
LarisLab/kustomer-client:openapi.json@1d997b7, paths ``/klasses/{name}/bulk``):

- up to 100 items per request (``maxItems: 100``), processed asynchronously; the job moves
  ``queued`` → ``running`` → ``complete`` and counts its batches in ``batches.complete`` / ``batches.total``;
- a batch is ``queued``, ``scheduled`` or ``complete`` and reports ``objectIds``, ``successCount``,
  ``failureCount``, ``completedAt``, ``errors`` and, only when the request's items carried
  ``_clientRef``, ``results``: one entry per item with that ``_clientRef`` and its status;
- each item is "the same object you'd send to the single-record endpoint", so it is checked
  exactly as a single create or update is (:mod:`.writes`), when its batch is processed.

Assumptions where the material read is silent (the batches page's list of result statuses was cut
off after ``"creat…``): a result's ``status`` is ``created`` or ``updated`` with the object's
``id``, or ``failed`` with an ``error`` in Kustomer's common error shape ``{"code", "message",
"meta"}`` (plus the ``status`` the single endpoint would have answered); ``errors`` holds the same
error objects with the item's ``_clientRef`` and ``meta.index``, its position in the request (the
shapes of tests/contracts/kustomer/bulk-batches-200.json). How Kustomer splits a job into batches is
not documented: here every ``batch_size`` items form one batch. Each job runs on its own timer of
``processing_seconds`` (the first quarter ``queued``, then batches complete one after another at
even steps), and a batch's items are written to the KObject state when it completes. Bulk items are
not held to the per-customer create limit of the single create endpoint (that limit is documented
for ``POST /klasses/{name}``).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_crm.sandbox.common.ids import new_object_id, utc_iso
from airflow_provider_crm.sandbox.vendors.kustomer.state import KustomerState
from airflow_provider_crm.sandbox.vendors.kustomer.validation import FieldError, is_object_id
from airflow_provider_crm.sandbox.vendors.kustomer.writes import (
    Refusal,
    create_refusal,
    invalid,
    not_an_object,
    update_refusal,
)

MAX_ITEMS = 100
"""Items per bulk request (the guide's "up to 100 records per request"; the OpenAPI's ``maxItems``)."""

CLIENT_REF = "_clientRef"
"""The item key whose value a batch's ``results`` hand back, so the caller can match each item."""

QUEUED_SHARE = 0.25
"""Part of a job's processing time it spends ``queued`` before batches start completing."""

QUEUED, RUNNING, COMPLETE = "queued", "running", "complete"
BATCH_SCHEDULED = "scheduled"
FAILED = "failed"


class Operation(enum.Enum):
    """What a job does to each item."""

    CREATE = "create"
    UPDATE = "update"

    @property
    def context(self) -> str:
        """The job's ``context`` attribute, as in the OpenAPI example ``api.sobjects.kobjects.bulk-create``."""
        return f"api.sobjects.kobjects.bulk-{self.value}"

    @property
    def done(self) -> str:
        """A successful item's result ``status``."""
        return f"{self.value}d"


@dataclass(frozen=True)
class ItemResult:
    """How one item ended: the object it wrote, or the refusal's error object."""

    client_ref: Any
    object_id: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class Batch:
    """Items ``start`` .. ``start + size - 1`` of a job, written together at clock time ``due``."""

    id: str
    start: int
    size: int
    due: float
    results: list[ItemResult] | None = None

    @property
    def complete(self) -> bool:
        """Whether the batch was processed."""
        return self.results is not None


@dataclass
class BulkJob:
    """One submitted bulk request and its progress; times are the app's clock unless named ``_at``."""

    id: str
    klass: str
    operation: Operation
    items: list[Any]
    ids: list[str]
    method: str
    path: str
    request_id: str
    created_at: datetime
    submitted: float
    running_from: float
    batches: list[Batch] = field(default_factory=list)

    @property
    def has_client_refs(self) -> bool:
        """Whether any item carried ``_clientRef`` (then batches report ``results``)."""
        return any(isinstance(item, Mapping) and CLIENT_REF in item for item in self.items)

    @property
    def complete_batches(self) -> int:
        """Batches processed so far."""
        return sum(batch.complete for batch in self.batches)

    def status(self, now: float) -> str:
        """``queued``, ``running`` or ``complete`` at clock time ``now``.

        :param now: the app's clock reading.
        """
        if self.complete_batches == len(self.batches):
            return COMPLETE
        return RUNNING if now >= self.running_from else QUEUED

    def batch_status(self, batch: Batch, now: float) -> str:
        """A batch's status: ``complete`` once processed, ``scheduled`` while the job runs, else ``queued``.

        :param batch: one of this job's batches.
        :param now: the app's clock reading.
        """
        if batch.complete:
            return COMPLETE
        return BATCH_SCHEDULED if self.status(now) == RUNNING else QUEUED

    def updated(self, now: float) -> float:
        """Clock time of the job's latest change (submitted, started running, a batch completed).

        :param now: the app's clock reading.
        """
        changes = [self.submitted] + [batch.due for batch in self.batches if batch.complete]
        if now >= self.running_from:
            changes.append(self.running_from)
        return max(changes)

    def wall(self, moment: float) -> str:
        """A clock time of this job as an ISO 8601 UTC timestamp.

        :param moment: the app's clock reading to convert.
        """
        return utc_iso(self.created_at + timedelta(seconds=moment - self.submitted))


def write_item(state: KustomerState, klass: str, operation: Operation, item: Any) -> str | Refusal:
    """Write one bulk item as the single endpoint would: the object's id, or why it was refused.

    :param state: the stored KObjects.
    :param klass: the job's klass.
    :param operation: create or update.
    :param item: the item as submitted (``_clientRef`` is set aside; an update names its object in ``id``).
    """
    if not isinstance(item, Mapping):
        return not_an_object("A bulk item")
    fields = {key: value for key, value in item.items() if key != CLIENT_REF}
    if operation is Operation.CREATE:
        refusal = create_refusal(state, klass, fields)
        if refusal is not None:
            return refusal
        created: str = state.create(klass, fields, fields.get("customer"))["id"]
        return created
    kobject_id = fields.pop("id", None)
    if not is_object_id(kobject_id):
        return invalid([FieldError(("id",), "id is required in every bulk update item: the KObject's id")])
    refusal = update_refusal(state, klass, kobject_id, fields)
    if refusal is not None:
        return refusal
    state.update(klass, kobject_id, fields)
    return str(kobject_id)


class BulkJobs:
    """Submitted jobs by id; :meth:`advance` processes every batch whose time has come, oldest first.

    Nothing runs in the background: the app advances the jobs whenever it is asked anything, so a
    job's progress depends only on the clock, and a test with a fake clock sees exact steps.

    :param state: the KObjects the items are written to.
    :param lock: the app's lock (handlers already hold it; tests reading the jobs take it).
    :param clock: the app's monotonic clock, in seconds.
    """

    def __init__(self, state: KustomerState, lock: threading.RLock, clock: Callable[[], float]) -> None:
        self._state = state
        self._lock = lock
        self._clock = clock
        self._jobs: dict[str, BulkJob] = {}
        self._pending: dict[str, BulkJob] = {}

    def now(self) -> float:
        """The app's clock reading."""
        return self._clock()

    def submit(
        self,
        klass: str,
        operation: Operation,
        items: Sequence[Any],
        *,
        ids: Sequence[str],
        processing_seconds: float,
        batch_size: int,
        method: str,
        path: str,
        request_id: str,
    ) -> BulkJob:
        """Accept a job (``queued``); its batches complete over ``processing_seconds``.

        :param klass: the klass from the path.
        :param operation: create or update.
        :param items: the request's items (already known to be 1 to 100).
        :param ids: the ``?ids=`` of an update applying one body to many objects, else empty.
        :param processing_seconds: time from submit to ``complete``.
        :param batch_size: items per batch.
        :param method: the request's method, echoed in the job's ``payload``.
        :param path: the request's path, echoed likewise.
        :param request_id: the request's id, echoed likewise.
        """
        submitted = self._clock()
        running_from = submitted + processing_seconds * QUEUED_SHARE
        starts = range(0, len(items), batch_size)
        step = (submitted + processing_seconds - running_from) / len(starts)
        batches = [
            Batch(new_object_id(), start, min(batch_size, len(items) - start), running_from + step * (number + 1))
            for number, start in enumerate(starts)
        ]
        batches[-1].due = submitted + processing_seconds
        job = BulkJob(
            id=new_object_id(),
            klass=klass,
            operation=operation,
            items=list(items),
            ids=list(ids),
            method=method,
            path=path,
            request_id=request_id,
            created_at=datetime.now(timezone.utc),
            submitted=submitted,
            running_from=running_from,
            batches=batches,
        )
        with self._lock:
            self._jobs[job.id] = job
            self._pending[job.id] = job
        return job

    def find(self, job_id: str) -> BulkJob | None:
        """A job by id, advanced to now; ``None`` if unknown.

        :param job_id: the id the submit answered.
        """
        with self._lock:
            self.advance()
            return self._jobs.get(job_id)

    def jobs(self) -> list[BulkJob]:
        """Every job, oldest first, advanced to now."""
        with self._lock:
            self.advance()
            return list(self._jobs.values())

    def advance(self) -> None:
        """Process every batch due by now, in the order they fell due."""
        with self._lock:
            now = self._clock()
            due = sorted(
                (
                    (batch.due, order, job, batch)
                    for order, job in enumerate(self._pending.values())
                    for batch in job.batches
                    if not batch.complete and batch.due <= now
                ),
                key=lambda entry: (entry[0], entry[1]),
            )
            for _, _, job, batch in due:
                self._process(job, batch)
                if job.complete_batches == len(job.batches):
                    del self._pending[job.id]

    def clear(self) -> None:
        """Forget every job."""
        with self._lock:
            self._jobs.clear()
            self._pending.clear()

    def _process(self, job: BulkJob, batch: Batch) -> None:
        results = []
        for item in job.items[batch.start : batch.start + batch.size]:
            client_ref = item.get(CLIENT_REF) if isinstance(item, Mapping) else None
            outcome = write_item(self._state, job.klass, job.operation, item)
            if isinstance(outcome, Refusal):
                results.append(ItemResult(client_ref, error=outcome.item_error()))
            else:
                results.append(ItemResult(client_ref, object_id=outcome))
        batch.results = results
