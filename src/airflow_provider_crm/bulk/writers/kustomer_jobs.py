"""Kustomer writers through bulk jobs: up to 100 records per request instead of one.

Kustomer counts one bulk request once against the org's per-minute budget, however many items it
carries (developer.kustomer.com/docs/guides/bulk-operations). A unit of records is sent as one or
more jobs (``POST``/``PUT /v1/klasses/{name}/bulk``), each at most :data:`BULK_MAX_ITEMS` items and
under the connection's ``bulk_max_body_bytes``; the worker waits for each job by reading its batches
(``GET /v1/bulk/{id}/batches``, see :func:`wait_for_job`), first when this run's jobs are usually
done, until they show it complete; they give one result per item, matched by the ``_clientRef`` the
item carried: the record's ledger key.

Each record gets one ledger line: written with its id, refused with Kustomer's code and message,
or, when the job does not say, settled from what Kustomer holds (looked up by external id for a
create, read by id for an update). A submit whose outcome is unknown is never sent again blindly;
see :class:`KustomerJobCreateWriter` and :class:`KustomerJobUpdateWriter`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_crm.bulk.job_polling import (
    BulkJobWatch,
    JobDurationEstimate,
    JobState,
    PollSchedule,
    job_from_batches,
)
from airflow_provider_crm.bulk.ledger import CREATED, ERROR, REJECTED, RETRY, UNCHANGED, UPDATED, Outcome
from airflow_provider_crm.bulk.runner import Item, RecordWriter
from airflow_provider_crm.bulk.sources import BadRecord
from airflow_provider_crm.bulk.submitted_jobs import SubmittedJobs
from airflow_provider_crm.bulk.writers.common import SYSTEMIC, refused_outcome, waiting_out_rate_limits
from airflow_provider_crm.bulk.writers.kustomer import KustomerCreateWriter, KustomerUpdateWriter
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmError,
    CrmNotFoundError,
    CrmOutcomeUnknownError,
    CrmRateLimitError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.models.kustomer import KObject
from airflow_provider_crm.models.kustomer_bulk import (
    BULK_MAX_ITEMS,
    BulkBatch,
    BulkItemResult,
    BulkJob,
    bulk_create_items,
    bulk_update_items,
    results_by_client_ref,
)
from airflow_provider_crm.models.kustomer_upsert import differing_fields, stored_attributes

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
"""Ledger action and status of a record Kustomer may or may not hold, which nothing can look up (a
create without external id whose submit got no answer): never sent again; a person must look."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Bytes of JSON per bulk request when the connection sets no ``bulk_max_body_bytes`` extra."""
SUBMIT_ROUNDS = 3
"""Submits of one chunk's records: the first, and resubmits of what a lookup proved missing."""
PAYLOAD_TOO_LARGE = 413

JOBS_PER_UNIT = 5
"""Jobs a worker submits before it waits for the first: while it waits for one, the others are processed,
so a run's requests are limited by the org's budget rather than by how long each job takes."""

DEFAULT_JOB_TIMEOUT = 3600.0
"""Seconds to wait for one job (at most 100 items) before settling its records from what Kustomer holds."""


def wait_for_job(
    hook: KustomerHook,
    job_id: str,
    items: int,
    *,
    schedule: PollSchedule | None = None,
    timeout: float = DEFAULT_JOB_TIMEOUT,
    estimate: JobDurationEstimate | None = None,
    submitted_at: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[BulkBatch] | None:
    """Wait for a job by reading its batches (``GET /v1/bulk/{id}/batches``) until they show it done, and
    return them: the answer that shows the job done holds every item's result. ``None`` once the job
    failed, is unknown or is past ``timeout``.

    The first read comes when ``estimate`` expects the job done, so a typical job costs its submit and
    this one read of the org's per-minute budget; later waits follow the schedule (as the triggerer's
    do). A batches answer that cannot tell whether the job is done
    (:func:`~airflow_provider_crm.bulk.job_polling.job_from_batches`) turns the wait to
    ``GET /v1/bulk/{id}``, with the batches read once that says ``complete``. A read that fails for a
    reason that can pass (5xx, lost connection, 429 beyond the transport's retries) is tried again at
    the next wait; an unknown job (404) or a status naming a failure gives up at once; auth and
    permission errors stop the run.

    :param hook: The hook the job was submitted through.
    :param job_id: The job's id.
    :param items: How many items the job was submitted with (its batches must account for them all).
    :param schedule: The waits between reads (default :class:`~airflow_provider_crm.bulk.job_polling.PollSchedule`).
    :param timeout: Seconds after which the job is given up on.
    :param estimate: How long jobs take; it learns from this one once done (default: the schedule's first wait).
    :param submitted_at: When the job was submitted, on ``clock`` (default: now).
    :param sleep: How to wait (a test may pass a fake).
    :param clock: A monotonic clock in seconds.
    """
    watch = BulkJobWatch([job_id], schedule)
    estimate = estimate or JobDurationEstimate(watch.schedule)
    start = clock() if submitted_at is None else submitted_at
    deadline = clock() + timeout
    wait, by_status, waiting_at = estimate.first_wait(clock() - start), False, None
    read_late = wait == 0
    while True:
        sleep(min(wait, max(0.0, deadline - clock())))
        asked_at = clock() - start
        try:
            batches = None if by_status else hook.get_bulk_results(job_id)
            job = None if batches is None else job_from_batches(job_id, batches, items)
            if job is None:
                by_status, batches, job = True, None, hook.get_bulk(job_id)
        except SYSTEMIC:
            raise
        except CrmNotFoundError:
            log.warning("Kustomer bulk job %s is unknown to Kustomer; settling its records by lookup", job_id)
            return None
        except CrmError as exc:
            log.warning("reading Kustomer bulk job %s failed (%s); trying again", job_id, exc)
        else:
            state = watch.record(job)
            if state is JobState.DONE:
                estimate.observe(asked_at, waiting_at, read_late=read_late)
                return batches if batches is not None else _batches_once_done(hook, job_id)
            if state is JobState.FAILED:
                log.warning("Kustomer bulk job %s ended %r; settling its records by lookup", job_id, job.status)
                return None
            waiting_at = asked_at
        if clock() >= deadline:
            log.warning(
                "Kustomer bulk job %s not complete after %.0f s; settling its records by lookup", job_id, timeout
            )
            return None
        wait = watch.wait()


def _batches_once_done(hook: KustomerHook, job_id: str) -> list[BulkBatch]:
    """The batches of a job its status showed complete; none when they cannot be read (records are looked up)."""
    try:
        return waiting_out_rate_limits(lambda: hook.get_bulk_results(job_id))
    except (*SYSTEMIC, CrmRateLimitError):
        raise
    except CrmError as exc:
        log.warning("reading the results of Kustomer bulk job %s failed (%s); looking records up", job_id, exc)
        return []


@dataclass
class Submitted:
    """What submitting a unit gave: the accepted jobs with their records, and the records settled already."""

    jobs: list[tuple[str, list[Item]]] = field(default_factory=list)
    settled: dict[int, Outcome] = field(default_factory=dict)
    submitted_at: dict[str, float] = field(default_factory=dict)
    """When each job was accepted, on :func:`time.monotonic`."""


class KustomerJobWriting:
    """Writes units of records as Kustomer bulk jobs; the create and update writers below say how.

    Subclasses provide :meth:`submit` (one job), :meth:`item_body` (a record's item, to size the body),
    :meth:`stored` (what Kustomer holds for a record), :meth:`written_action`, :meth:`settle_refusal`
    and :meth:`after_unknown_submit`.
    """

    batch_size = JOBS_PER_UNIT * BULK_MAX_ITEMS
    hook: KustomerHook
    klass_name: str
    on_submitted: Callable[[str, list[Item]], None] | None = None
    """Called right after each job is accepted, with its id and records (a deferrable task saves them there)."""

    def __init__(
        self,
        hook: KustomerHook,
        klass_name: str,
        *,
        schedule: PollSchedule | None = None,
        timeout: float = DEFAULT_JOB_TIMEOUT,
        max_body_bytes: int | None = None,
    ) -> None:
        """:param hook: The Kustomer hook to write through.
        :param klass_name: The klass of every record.
        :param schedule: The waits between polls of a job (default
            :class:`~airflow_provider_crm.bulk.job_polling.PollSchedule`).
        :param timeout: Seconds to wait for a job before settling its records by lookup.
        :param max_body_bytes: The body cap per request; default the connection's ``bulk_max_body_bytes``
            extra, else :data:`DEFAULT_MAX_BODY_BYTES`.
        """
        self.hook = hook
        self.klass_name = klass_name
        self.schedule = schedule
        self.timeout = timeout
        self._max_body_bytes = max_body_bytes
        self.durations = JobDurationEstimate(schedule)
        """How long this writer's jobs take: when to read a new job the first time."""

    @property
    def job_writer(self) -> KustomerJobWriting:
        """This writer, reached through any wrapper (for :func:`submit_records` and :class:`CollectedJobsWriter`)."""
        return self

    @property
    def max_body_bytes(self) -> int:
        """Bytes of JSON one bulk request may carry."""
        if self._max_body_bytes is None:
            self._max_body_bytes = int(self.hook.extra("bulk_max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        return self._max_body_bytes

    # -- what each kind of job says ------------------------------------------------------------

    def submit(self, chunk: list[Item]) -> BulkJob:
        """Submit one job for ``chunk`` (at most 100 items, under the body cap).

        :param chunk: The records to send, keyed by their ledger keys as ``_clientRef``.
        """
        raise NotImplementedError

    def item_body(self, chunk: list[Item]) -> list[dict[str, Any]]:
        """The JSON items the submit of ``chunk`` sends (for sizing the body).

        :param chunk: The records.
        """
        raise NotImplementedError

    def stored(self, item: Item) -> KObject | None:
        """The object Kustomer holds showing this record written, ``None`` when it doesn't.

        :param item: The record.
        """
        raise NotImplementedError

    def can_look_up(self, item: Item) -> bool:
        """Whether :meth:`stored` can tell whether the record was written.

        :param item: The record.
        """
        return True

    written_action = CREATED

    def settle_refusal(self, item: Item, result: BulkItemResult) -> Outcome | None:
        """An outcome other than "rejected" for an item Kustomer refused, when what it holds says so.

        :param item: The record.
        :param result: Kustomer's result for its item.
        """
        return None

    def after_unknown_submit(self, chunk: list[Item]) -> tuple[dict[int, Outcome], list[Item]]:
        """After a submit whose outcome is unknown: the records settled, and those to submit again.

        :param chunk: The records the submit carried.
        """
        raise NotImplementedError

    # -- the unit --------------------------------------------------------------------------------

    def write(self, items: list[Item]) -> list[Outcome]:
        """Write a unit (at most :attr:`batch_size` records) as jobs of at most 100, submitted before the
        first is waited for; one outcome per record.

        :param items: The unit's records; their keys are unique in the unit (the runner's key gate).
        """
        submitted = self.submit_unit(items)
        outcomes = dict(submitted.settled)
        for job_id, chunk in submitted.jobs:
            outcomes.update(self.collect(chunk, job_id, submitted_at=submitted.submitted_at.get(job_id)))
        return [outcomes[item.index] for item in items]

    def submit_unit(self, items: list[Item]) -> Submitted:
        """Submit a unit as one or more jobs without waiting for them: the jobs, and the records settled
        already (refused, too large, or settled by lookup after a submit whose outcome is unknown).

        :param items: The unit's records; their keys are unique in the unit.
        """
        submitted = Submitted()
        for chunk in self._chunks(items, submitted.settled):
            self._submit_chunk(chunk, submitted)
        return submitted

    def _chunks(self, items: list[Item], outcomes: dict[int, Outcome]) -> Iterator[list[Item]]:
        """Runs of at most :data:`BULK_MAX_ITEMS` items whose bulk body stays under the cap; an item over the
        cap alone is refused."""
        chunk: list[Item] = []
        size = len(b"[]")
        for item in items:
            item_size = self._item_bytes(item)
            if item_size + len(b"[]") > self.max_body_bytes:
                message = f"the record alone is over the bulk body cap of {self.max_body_bytes} bytes"
                outcomes[item.index] = _rejected(item, "payload_too_large", message)
                continue
            added = item_size + (len(b", ") if chunk else 0)
            if chunk and (size + added > self.max_body_bytes or len(chunk) >= BULK_MAX_ITEMS):
                yield chunk
                chunk, size, added = [], len(b"[]"), item_size
            chunk.append(item)
            size += added
        if chunk:
            yield chunk

    def _item_bytes(self, item: Item) -> int:
        # Serialized as the transport sends it (``requests``' ``json=``: default separators, ASCII).
        return len(json.dumps(self.item_body([item])[0], allow_nan=False).encode())

    def _submit_chunk(self, chunk: list[Item], submitted: Submitted) -> None:
        pending = chunk
        for _ in range(SUBMIT_ROUNDS):
            try:
                job = waiting_out_rate_limits(lambda: self.submit(pending))  # noqa: B023 (called at once)
            except (*SYSTEMIC, CrmRateLimitError):
                raise
            except CrmOutcomeUnknownError:
                settled, pending = self.after_unknown_submit(pending)
                submitted.settled.update(settled)
                if not pending:
                    return
                continue
            except CrmError as exc:
                if isinstance(exc, CrmApiError) and exc.status == PAYLOAD_TOO_LARGE and len(pending) > 1:
                    half = len(pending) // 2  # Kustomer's cap is lower than the one configured: halve
                    self._submit_chunk(pending[:half], submitted)
                    self._submit_chunk(pending[half:], submitted)
                    return
                submitted.settled.update({item.index: refused_outcome(item, REJECTED, exc) for item in pending})
                return
            submitted.jobs.append((job.id, pending))
            submitted.submitted_at[job.id] = time.monotonic()
            if self.on_submitted is not None:
                self.on_submitted(job.id, pending)
            return
        reason = f"still not written after {SUBMIT_ROUNDS} submits whose outcome was unknown"
        submitted.settled.update({item.index: self.unsettled(item, reason) for item in pending})

    def collect(
        self, chunk: list[Item], job_id: str, *, timeout: float | None = None, submitted_at: float | None = None
    ) -> dict[int, Outcome]:
        """Wait for the job to complete and turn each item's result into the record's outcome.

        :param chunk: The records the job was submitted with.
        :param job_id: The id of the job the submit answered.
        :param timeout: Seconds to wait for the job (default the writer's); 0 asks once.
        :param submitted_at: When the job was accepted, on :func:`time.monotonic` (default: now).
        """
        batches = wait_for_job(
            self.hook,
            job_id,
            len(chunk),
            schedule=self.schedule,
            timeout=self.timeout if timeout is None else timeout,
            estimate=self.durations,
            submitted_at=submitted_at,
        )
        return self.settle_from(chunk, job_id, batches or [])

    def settle_job(self, chunk: list[Item], job_id: str, *, complete: bool) -> dict[int, Outcome]:
        """Each record's outcome from the results of its job (read when ``complete``), else from what
        Kustomer holds: the way records are settled after the triggerer waited.

        :param chunk: The records the job was submitted with.
        :param job_id: The job's id.
        :param complete: Whether the job is known to be complete (its results are read).
        """
        return self.settle_from(chunk, job_id, _batches_once_done(self.hook, job_id) if complete else [])

    def settle_from(self, chunk: list[Item], job_id: str, batches: list[BulkBatch]) -> dict[int, Outcome]:
        """Each record's outcome from its result in ``batches``, else from what Kustomer holds.

        :param chunk: The records the job was submitted with.
        :param job_id: The job's id.
        :param batches: The job's batches once complete; none when it is not known complete.
        """
        results = results_by_client_ref(batches)
        return {item.index: self._settle(item, results.get(item.key), job_id) for item in chunk}

    def _settle(self, item: Item, result: BulkItemResult | None, job_id: str) -> Outcome:
        if result is not None and result.ok and result.object_id:
            return Outcome(item.index, item.key, self.written_action, remote_id=result.object_id)
        if result is not None and result.failed:
            settled = self.settle_refusal(item, result)
            if settled is not None:
                return settled
            message = (result.error or "refused")[:1000]
            return _rejected(item, result.code or "bulk_item_failed", message)
        said = "no result" if result is None else f"status {result.status!r}"
        return self.looked_up(item, f"Kustomer bulk job {job_id} gave {said} for the record")

    def looked_up(self, item: Item, why: str) -> Outcome:
        """Settle a record from what Kustomer holds: written (with its id), or not written (owed).

        :param item: The record.
        :param why: Why it is looked up, for the ledger when it can't be settled.
        """
        if not self.can_look_up(item):
            return self.unsettled(item, why)
        held = self.held(item)
        if isinstance(held, CrmError):
            return self.unsettled(item, f"{why}, and looking it up failed: {held}")
        if held is None:
            return self.unsettled(item, f"{why}, and Kustomer does not hold it")
        return Outcome(item.index, item.key, self.written_action, remote_id=held.id)

    def held(self, item: Item) -> KObject | CrmError | None:
        """:meth:`stored`, waiting out rate limits; the error when the lookup fails (systemic ones stop the run).

        :param item: The record.
        """
        try:
            return waiting_out_rate_limits(lambda: self.stored(item))
        except (*SYSTEMIC, CrmRateLimitError):
            raise
        except CrmError as exc:
            return exc

    def unsettled(self, item: Item, why: str) -> Outcome:
        """A record not known to be written: owed (a task retry sends it again) when a retry can look it
        up first, else :data:`UNKNOWN`.

        :param item: The record.
        :param why: What happened, for the ledger.
        """
        if not self.can_look_up(item):
            message = f"{why}; it may or may not exist and has no external_id to look it up by: not sent again"
            return Outcome(
                item.index,
                item.key,
                UNKNOWN,
                status=UNKNOWN,
                error_code="outcome_unknown",
                error_message=message[:1000],
            )
        return Outcome(item.index, item.key, REJECTED, status=RETRY, error_code="not_written", error_message=why[:1000])


def _rejected(item: Item, code: str, message: str) -> Outcome:
    return Outcome(item.index, item.key, REJECTED, status=ERROR, error_code=code, error_message=message)


def _looks_duplicate(result: BulkItemResult) -> bool:
    """Whether Kustomer refused the item for an external id another object holds.

    Kustomer does not document the code of this refusal in a bulk result; the single create answers
    409 for it. Read as a duplicate: a code naming a conflict or duplicate, or a message saying the
    value already exists.
    """
    code = (result.code or "").lower()
    message = (result.error or "").lower()
    return (
        "conflict" in code
        or "duplicate" in code
        or code == "409"
        or "already exist" in message
        or "duplicate" in message
    )


class KustomerJobCreateWriter(KustomerJobWriting, KustomerCreateWriter):
    """Creates KObjects through bulk jobs; a record whose external id already exists is ``unchanged``.

    A submit whose outcome is unknown (connection lost after sending, 5xx) is never sent again as is:
    the records with an external id are looked up, those Kustomer holds are settled as created, and
    only the others are submitted again. If the lost job was still queued when they were looked up,
    it and the new job both carry them; Kustomer keeps external ids unique per klass, so the second
    item to be processed is refused as a duplicate, which is settled by lookup as ``unchanged`` with
    the stored id: each record is written once. A record without an external id cannot be looked up:
    it gets the ledger status ``unknown``, is not sent again, and the task fails saying so.
    """

    def item_body(self, chunk: list[Item]) -> list[dict[str, Any]]:
        return bulk_create_items(self.klass_name, {item.key: item.prepared for item in chunk})

    def submit(self, chunk: list[Item]) -> BulkJob:
        return self.hook.submit_bulk_create(self.klass_name, {item.key: item.prepared for item in chunk})

    def can_look_up(self, item: Item) -> bool:
        return bool(item.prepared.external_id)

    def stored(self, item: Item) -> KObject | None:
        return self.hook.find_kobject_by_external_id(self.klass_name, item.prepared.external_id)

    def settle_refusal(self, item: Item, result: BulkItemResult) -> Outcome | None:
        if not self.can_look_up(item) or not _looks_duplicate(result):
            return None
        held = self.held(item)
        return Outcome(item.index, item.key, UNCHANGED, remote_id=held.id) if isinstance(held, KObject) else None

    def after_unknown_submit(self, chunk: list[Item]) -> tuple[dict[int, Outcome], list[Item]]:
        settled: dict[int, Outcome] = {}
        again: list[Item] = []
        why = "the bulk submit carrying the record got no answer"
        for item in chunk:
            held = self.held(item) if self.can_look_up(item) else None
            if isinstance(held, KObject):
                settled[item.index] = Outcome(item.index, item.key, CREATED, remote_id=held.id)
            elif held is None and self.can_look_up(item):
                again.append(item)  # provably not there: safe to submit again
            else:
                failure = f", and looking it up failed: {held}" if held is not None else ""
                settled[item.index] = self.unsettled(item, why + failure)
        return settled, again


class KustomerJobUpdateWriter(KustomerJobWriting, KustomerUpdateWriter):
    """Updates KObjects by ``id`` through bulk jobs.

    A submit whose outcome is unknown is submitted again as a new job: an update sends the same
    values to the same object, which is idempotent, so applying it twice leaves what applying it once
    does. An update with ``rev`` is not idempotent (the second application meets a revision that
    moved on): when its item is refused for a stale ``rev``, the object is read, and one at
    ``rev + 1`` holding every value sent is settled as ``updated`` (the lost job applied it); any
    other refusal stays a rejection with Kustomer's message.
    """

    written_action = UPDATED

    def item_body(self, chunk: list[Item]) -> list[dict[str, Any]]:
        return bulk_update_items(self.klass_name, {item.key: item.prepared for item in chunk})

    def submit(self, chunk: list[Item]) -> BulkJob:
        return self.hook.submit_bulk_update(self.klass_name, {item.key: item.prepared for item in chunk})

    def stored(self, item: Item) -> KObject | None:
        request = item.prepared
        try:
            held = self.hook.get_kobject(self.klass_name, request.kobject_id)
        except CrmNotFoundError:
            return None
        values = {name: value for name, value in request.body.items() if name != "rev"}
        if differing_fields(values, stored_attributes(held)):
            return None
        if request.rev is not None and held.rev != request.rev + 1:
            return None
        return held

    def settle_refusal(self, item: Item, result: BulkItemResult) -> Outcome | None:
        if item.prepared.rev is None or not _looks_stale(result):
            return None
        held = self.held(item)
        return Outcome(item.index, item.key, UPDATED, remote_id=held.id) if isinstance(held, KObject) else None

    def after_unknown_submit(self, chunk: list[Item]) -> tuple[dict[int, Outcome], list[Item]]:
        log.warning(
            "a bulk update of %d record(s) got no answer; submitting it again (a PUT is idempotent)", len(chunk)
        )
        return {}, chunk


def _looks_stale(result: BulkItemResult) -> bool:
    """Whether Kustomer refused an update item for a stale ``rev`` (a conflict naming ``rev``; the code
    of this refusal in a bulk result is not documented, the single update answers 409)."""
    code = (result.code or "").lower()
    return ("conflict" in code or code == "409") and "rev" in (result.error or "").lower()


# -- deferrable: submit from the worker, wait in the triggerer, collect on the worker -----------------


def submit_records(
    writer: RecordWriter,
    records: Iterable[dict[str, Any] | BadRecord],
    plan: SubmittedJobs,
    in_play: Callable[[int], bool] = lambda index: True,
    unchanged: Callable[[int, str, Any], bool] | None = None,
) -> None:
    """Validate and submit every record not in ``plan`` yet, saving each job in it as soon as it is accepted.

    Units and chunks are formed as when the worker waits for each job. A record that is not valid is
    left for the collecting pass, which refuses it; so is a record whose key an earlier record of the
    input holds: it is written once that one is collected, in input order.

    :param writer: A Kustomer job writer (possibly wrapped, as the operators wrap it for CSV cells).
    :param records: The task's input, read once.
    :param plan: Where the jobs are saved; jobs it already holds are not submitted again.
    :param in_play: Whether the record at a position is sent in this try (resume across tries).
    :param unchanged: Whether a record is skipped as unchanged (incremental sync); the collecting pass
        skips the same records.
    """
    jobs: KustomerJobWriting = writer.job_writer  # type: ignore[attr-defined]
    jobs.on_submitted = lambda job_id, chunk: plan.add_job(job_id, (item.index for item in chunk))
    seen: set[str] = set()
    unit: list[Item] = []
    try:
        for index, record in enumerate(records):
            if not in_play(index) or isinstance(record, BadRecord):
                continue
            key = writer.key(record, index)
            if key in seen:
                continue
            seen.add(key)
            if plan.knows(index):
                continue
            try:
                prepared = writer.prepare(record)
            except CrmValidationError:
                continue
            if unchanged is not None and unchanged(index, key, prepared):
                continue
            unit.append(Item(index, key, record, prepared))
            if len(unit) >= writer.batch_size:
                plan.add_settled(jobs.submit_unit(unit).settled.values())
                unit = []
        if unit:
            plan.add_settled(jobs.submit_unit(unit).settled.values())
    finally:
        jobs.on_submitted = None


class CollectedJobsWriter:
    """A record writer that settles records from the jobs ``plan`` holds instead of submitting them.

    A record of a job the trigger saw complete is settled from the job's results; of a job not known
    complete (the trigger gave up on it), from one more look at the job, else from what Kustomer
    holds, as when the worker waits. A record settled at submit keeps that outcome; a record in no
    job (one that waited for an earlier record of its key) is written by ``writer`` as usual.

    :param writer: The Kustomer job writer (possibly wrapped).
    :param plan: The jobs submitted.
    :param complete: The ids of the jobs the trigger saw complete.
    """

    def __init__(self, writer: RecordWriter, plan: SubmittedJobs, complete: Iterable[str]) -> None:
        self.writer = writer
        self.batch_size = writer.batch_size
        self.plan = plan
        self.complete = frozenset(complete)

    def key(self, record: dict[str, Any], index: int) -> str:
        return self.writer.key(record, index)

    def prepare(self, record: dict[str, Any]) -> Any:
        return self.writer.prepare(record)

    def preview(self, items: list[Item]) -> list[Outcome]:
        return self.writer.preview(items)

    def write(self, items: list[Item]) -> list[Outcome]:
        jobs: KustomerJobWriting = self.writer.job_writer  # type: ignore[attr-defined]
        outcomes: dict[int, Outcome] = {}
        by_job: dict[str, list[Item]] = {}
        fresh: list[Item] = []
        for item in items:
            settled = self.plan.settled(item.index)
            job_id = self.plan.job_of(item.index)
            if settled is not None:
                outcomes[item.index] = settled
            elif job_id is not None:
                by_job.setdefault(job_id, []).append(item)
            else:
                fresh.append(item)
        for job_id, chunk in by_job.items():
            if job_id in self.complete:
                outcomes.update(jobs.settle_job(chunk, job_id, complete=True))
            else:
                outcomes.update(jobs.collect(chunk, job_id, timeout=0))
        if fresh:
            outcomes.update((outcome.index, outcome) for outcome in self.writer.write(fresh))
        return [outcomes[item.index] for item in items]
