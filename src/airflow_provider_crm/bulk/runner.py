"""Write a stream of records with bounded concurrency, one outcome per record, resumable.

Memory stays flat however long the input is: records are read lazily, at most a few units are in
flight, at most :data:`MAX_HELD` records wait behind an earlier record of their key, and completed
positions are folded into a low-water mark (every record before it is settled, or owed: refused for
a reason that can pass) that is also what a retried task resumes from; see
:mod:`~airflow_provider_crm.bulk.progress`.

Records that share a key never travel together: a unit holds each key once, and a record whose key
is in a unit being filled or in flight waits for that unit to finish, then goes in input order. So
the last record of a key wins, a Kaiten merge reads what the previous record wrote, and a HubSpot
batch never repeats an id. Records of other keys don't wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from airflow_provider_crm.bulk.ledger import (
    CREATED,
    ERROR,
    INVALID,
    NOT_ATTEMPTED,
    REJECTED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    WOULD_CREATE,
    WOULD_UPDATE,
    Ledger,
    Outcome,
)
from airflow_provider_crm.bulk.ordering import KeyGate
from airflow_provider_crm.bulk.policy import ErrorPolicy
from airflow_provider_crm.bulk.progress import (
    MAX_OWED_KEYS,
    MAX_OWED_RANGES,
    Resume,
    Tracker,
    rejection_from_state,
    rejection_state,
)
from airflow_provider_crm.bulk.progress_log import InfoLog, ProgressLog, summary_line
from airflow_provider_crm.bulk.sources import BadRecord
from airflow_provider_crm.bulk.sync_state import SyncState
from airflow_provider_crm.errors import CrmValidationError

log = logging.getLogger(__name__)

IDS_IN_SUMMARY = 100
"""Up to this many records, the XCom summary carries the key → remote id map (beyond: ``push_ids``, ``read_ids``)."""
CHECKPOINT_EVERY_SECONDS = 5.0
MAX_HELD = 1_000
"""Records held back behind an earlier record of their key; when full, reading waits for writes."""
MAX_SPAN = 100_000
"""Positions read past the low-water mark before reading waits (bounds the completions kept)."""


class Item:
    """One input record on its way through: position, key and the validated request.

    ``key`` is how the ledger names the record; ``same_as`` is what decides that two records address
    one remote record (and so are written in order), which is the key unless the writer says how
    the vendor compares them (HubSpot: without case or padding).
    """

    __slots__ = ("index", "key", "known_id", "prepared", "record", "same_as")

    def __init__(self, index: int, key: str, record: Any, prepared: Any, same_as: str | None = None) -> None:
        self.index = index
        self.key = key
        self.record = record
        self.prepared = prepared
        self.same_as = key if same_as is None else same_as
        self.known_id: str | None = None
        """The remote id the incremental-sync store holds for the key (a writer may use it to skip a lookup)."""


class RecordWriter(Protocol):
    """What a vendor contributes: how to key, check, write and preview records."""

    batch_size: int

    def key(self, record: dict[str, Any], index: int) -> str: ...

    def prepare(self, record: dict[str, Any]) -> Any:
        """Validate and build the request; raise :class:`CrmValidationError` for a bad record."""

    def write(self, items: list[Item]) -> list[Outcome]:
        """Write the items (one, or a batch) and return one outcome per item."""

    def preview(self, items: list[Item]) -> list[Outcome]:
        """Resolve what can be resolved without writing (dry run)."""


SameRecord = Callable[[Any], str]
"""Optional writer method ``same_record(prepared)``: a string equal for records the vendor takes for one."""


class Progress(Protocol):
    """Where a task keeps how far it got (and what it counted), so a retry sends only what is owed."""

    def load(self) -> Resume: ...

    def save(self, resume: Resume) -> None: ...


@dataclass
class Summary:
    """Counts for XCom: bounded in size, never the payloads."""

    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    resumed_from: int = 0
    elapsed_s: float = 0.0
    ids: dict[str, str] | None = field(default_factory=dict)
    """Key → remote id while the run is small; None once they can't all be given (see :meth:`as_xcom`)."""
    ledger_path: str | None = None
    ledger_paths: list[str] = field(default_factory=list)
    dead_letter_path: str | None = None
    rate_limited: int = 0
    retry_later: int = 0
    dry_run: bool = False
    incremental: bool = False
    """Whether the run compared records with an incremental-sync store (``skipped_unchanged`` then counts)."""
    skipped_unchanged: int = 0
    """Records of this try not sent because the store holds them as confirmed."""
    full_sync: bool = False

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        self.counts[outcome.action] = self.counts.get(outcome.action, 0) + 1
        if outcome.action == UNCHANGED and outcome.status == SKIPPED:
            self.skipped_unchanged += 1
        self.retry_later += outcome.retry_later
        if outcome.remote_id and self.ids is not None and len(self.ids) < IDS_IN_SUMMARY:
            self.ids[outcome.key] = outcome.remote_id

    @property
    def rejected(self) -> int:
        return self.counts.get(REJECTED, 0) + self.counts.get(INVALID, 0)

    def as_xcom(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "total": self.total,
            **{action: self.counts.get(action, 0) for action in (CREATED, UPDATED, UNCHANGED, REJECTED)},
            "resumed_from": self.resumed_from,
            "elapsed_s": round(self.elapsed_s, 3),
            "records_per_s": round(self.total / self.elapsed_s, 2) if self.elapsed_s > 0 else None,
            "retry_later": self.retry_later,
            "rate_limited": self.rate_limited,
            "ledger_path": self.ledger_path,
            "ledger_paths": list(self.ledger_paths),
            "dead_letter_path": self.dead_letter_path,
        }
        if self.dry_run:
            result.update({action: self.counts.get(action, 0) for action in (WOULD_CREATE, WOULD_UPDATE, INVALID)})
        if self.incremental:
            result.update(skipped_unchanged=self.skipped_unchanged, full_sync=self.full_sync)
        if self.counts.get(NOT_ATTEMPTED):
            result[NOT_ATTEMPTED] = self.counts[NOT_ATTEMPTED]
        if self.total <= IDS_IN_SUMMARY and self.ids is not None:
            result["ids"] = dict(self.ids)
        return result


class BulkRunner:
    """Runs a :class:`RecordWriter` over records and accounts for each one.

    Records that share a key are written one at a time and in input order (see
    :mod:`~airflow_provider_crm.bulk.ordering`); records of other keys keep flowing meanwhile.
    """

    key_gate: type[KeyGate[Item]] = KeyGate
    """What admits items into units; a subclass may swap it (the benchmarks measure its cost this way)."""

    def __init__(
        self,
        writer: RecordWriter,
        ledger: Ledger,
        policy: ErrorPolicy,
        *,
        max_workers: int = 4,
        dry_run: bool = False,
        progress: Progress | None = None,
        rate_limited: Callable[[], int] = lambda: 0,
        max_held: int = MAX_HELD,
        max_owed_ranges: int = MAX_OWED_RANGES,
        max_owed_keys: int = MAX_OWED_KEYS,
        progress_interval: float | None = None,
        expected: int | None = None,
        logger: InfoLog = log,
        sync: SyncState | None = None,
    ) -> None:
        self.writer = writer
        self._same_record: SameRecord | None = getattr(writer, "same_record", None)
        self.ledger = ledger
        self.policy = policy
        self.max_workers = max(1, max_workers)
        self.dry_run = dry_run
        self.progress = progress
        self.rate_limited = rate_limited
        self.max_held = max(1, max_held)
        self.max_owed_ranges = max_owed_ranges
        self.max_owed_keys = max_owed_keys
        self.progress_interval = progress_interval
        """Seconds between progress lines (:class:`~airflow_provider_crm.bulk.progress_log.ProgressLog`); None: none."""
        self.expected = expected
        """How many records the input holds, when known (for the progress lines)."""
        self.logger = logger
        """Where the progress and summary lines go: the operator passes its task log."""
        self.sync = sync
        """The incremental-sync store: records it holds as confirmed are not sent (:mod:`.sync_state`)."""
        self._ledgers: list[str] = []
        self._lock = threading.Lock()

    def run(self, records: Iterable[dict[str, Any] | BadRecord]) -> Summary:
        started = time.monotonic()
        resume = self.progress.load() if self.progress and not self.dry_run else Resume()
        summary = Summary(resumed_from=resume.settled, dry_run=self.dry_run)
        if self.sync is not None:
            summary.incremental, summary.full_sync = True, self.sync.full
        summary.counts.update(resume.counts)
        summary.total = resume.settled
        summary.ledger_path = self.ledger.ledger.path
        summary.dead_letter_path = self.ledger.dead_letter.path
        self._ledgers = _ledgers(resume.ledgers, summary.ledger_path)
        summary.ledger_paths = list(self._ledgers)
        if resume.started and summary.ledger_path is None:
            summary.ids = None  # the earlier tries' ids are in no ledger: better none than some
        tracker = Tracker(resume, max_owed_ranges=self.max_owed_ranges, max_owed_keys=self.max_owed_keys)
        self._carry_over(resume)
        watched: AbstractContextManager[object] = nullcontext()
        if self.progress_interval:
            watched = ProgressLog(
                self.progress_interval,
                lambda: summary.total,
                expected=self.expected,
                rate_limited=self.rate_limited,
                logger=self.logger,
            )
        try:
            with watched, ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="crm-bulk") as pool:
                dispatch = _Dispatch(self, pool, summary, tracker)
                try:
                    for index, record in enumerate(records):
                        if not tracker.in_play(index):
                            continue
                        item = self._prepare(index, record, summary, tracker)
                        if item is not None:
                            dispatch.add(item)
                    dispatch.finish()
                except BaseException:
                    # Don't start queued units once the run is failing; let running ones finish.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            if self.progress and not self.dry_run:
                self._checkpoint(tracker)
            summary.elapsed_s = time.monotonic() - started
            summary.rate_limited = self.rate_limited()
            self.ledger.close()
            self.logger.info("%s", summary_line(summary.total, summary.elapsed_s, summary.counts, summary.rate_limited))
        if resume.started and summary.ids is not None and summary.total <= IDS_IN_SUMMARY:
            from airflow_provider_crm.bulk.ids import read_ids

            summary.ids = read_ids(*self._ledgers)  # this try's ids and the earlier tries'
        return summary

    def _carry_over(self, resume: Resume) -> None:
        """Give the policy what earlier tries decided: their first rejection, and a stop for good."""
        if resume.first_rejection:
            self.policy.carried = rejection_from_state(resume.first_rejection)
        if self.policy.fail_fast and resume.counts.get(REJECTED):
            # An earlier try stopped at a record refused for good; sending it again can't change that.
            log.warning("an earlier try stopped at a record refused for good (on_record_error='fail'): sending nothing")
            self.policy.stop_sending = True

    def _prepare(
        self, index: int, record: dict[str, Any] | BadRecord, summary: Summary, tracker: Tracker
    ) -> Item | None:
        """The validated item, or None when the record was refused (and accounted for) on the spot."""
        if isinstance(record, BadRecord):
            outcome = Outcome(
                index, f"#{index}", self._refused, status=ERROR, error_code="bad_record", error_message=record.reason
            )
            self._account(outcome, {"_raw": record.raw}, summary, tracker, outcome.key)
            return None
        key = self.writer.key(record, index)
        try:
            prepared = self.writer.prepare(record)
        except CrmValidationError as exc:
            outcome = Outcome(
                index, key, self._refused, status=ERROR, error_code="validation_error", error_message=str(exc)
            )
            self._account(outcome, record, summary, tracker, key)
            return None
        item = Item(index, key, record, prepared, self._same_record(prepared) if self._same_record else None)
        if self.sync is not None:
            skip, item.known_id = self.sync.unchanged(index, key, prepared, item.same_as)
            if skip:
                outcome = Outcome(index, key, UNCHANGED, remote_id=item.known_id, status=SKIPPED)
                self._account(outcome, record, summary, tracker, item.same_as)
                return None
        return item

    @property
    def _refused(self) -> str:
        return INVALID if self.dry_run else REJECTED

    def _checkpoint(self, tracker: Tracker) -> None:
        """Save what a retry resumes from: the mark, the owed ranges, the counts and the first rejection."""
        assert self.progress is not None
        with self._lock:
            first = self.policy.first
            resume = tracker.snapshot(rejection_state(first) if first else None, list(self._ledgers))
        self.progress.save(resume)

    def _account(self, outcome: Outcome, record: Any, summary: Summary, tracker: Tracker, same_as: str) -> None:
        with self._lock:
            self.ledger.record(outcome, record)
            summary.add(outcome)
            if self.sync is not None:
                self.sync.settled(outcome)
            # Owed: refused for a reason that can pass. Never settled: not sent (or the run stopped on it).
            settled = None if outcome.action == NOT_ATTEMPTED else outcome.action
            tracker.complete(outcome.index, settled, outcome.retry_later, same_as)
            if not self.dry_run:  # a dry run reports on every record; it never stops early
                self.policy.on_outcome(outcome)

    def _not_attempted(
        self, unit: list[Item], summary: Summary, tracker: Tracker, stop: BaseException | None = None
    ) -> None:
        for item in unit:
            if stop is None:
                message = "not sent: the run stopped after a rejected record (on_record_error='fail')"
                code = None
            else:
                message = f"not settled: the run stopped on {type(stop).__name__}: {stop}"[:1000]
                code = getattr(stop, "code", None) or type(stop).__name__
            outcome = Outcome(
                item.index, item.key, NOT_ATTEMPTED, status=SKIPPED, error_code=code, error_message=message
            )
            self._account(outcome, item.record, summary, tracker, item.same_as)


def _ledgers(earlier: list[str], current: str | None) -> list[str]:
    """The ledgers of every try so far, oldest first; the same path appended to counts once."""
    paths = [path for path in earlier if path != current]
    return [*paths, current] if current is not None else paths


class _Dispatch:
    """One run's units: filled from the key gate, sent to the pool, accounted for when they finish.

    Everything here runs on the thread that reads the input; only the writes run in the pool.
    """

    def __init__(self, runner: BulkRunner, pool: ThreadPoolExecutor, summary: Summary, tracker: Tracker) -> None:
        self.runner = runner
        self.pool = pool
        self.summary = summary
        self.tracker = tracker
        self.gate = runner.key_gate()
        self.batch: list[Item] = []
        self.in_flight: dict[Future[list[Outcome]], list[Item]] = {}
        self.last_checkpoint = time.monotonic()

    def add(self, item: Item) -> None:
        """Take the next input item; returns once there is room to read another."""
        if self.runner.policy.stop_sending:
            self.runner._not_attempted([item], self.summary, self.tracker)
            return
        if self.gate.admit(item):
            self._join(item)
        self._pump()
        self._make_room(item.index + 1)

    def finish(self) -> None:
        """Send what is left (partial units, items that waited for their key) and wait for all of it."""
        while True:
            self._pump()
            if self.batch:
                self._flush()  # may settle a unit at once and free a held key: look again
                continue
            if not self.in_flight:
                break
            self._collect(block=True)
        if self.gate.held:
            raise RuntimeError(f"bulk runner: {self.gate.held} record(s) still held at the end of the run")

    def _join(self, item: Item) -> None:
        self.batch.append(item)
        if len(self.batch) >= self.runner.writer.batch_size:
            self._flush()

    def _pump(self) -> None:
        """Move items whose key became free into units, oldest first."""
        while (item := self.gate.take_ready()) is not None:
            self._join(item)

    def _crowded(self, read: int) -> bool:
        if self.gate.held > self.runner.max_held:
            return True
        # Completions after the low-water mark are kept until it passes them (none once it is stuck).
        return not self.tracker.stuck and read - self.tracker.mark > MAX_SPAN

    def _make_room(self, read: int) -> None:
        """Block until the gate holds few enough items (and the mark is close enough) to read on."""
        while self._crowded(read):
            if self.in_flight:
                self._collect(block=True)
            elif self.batch:
                self._flush()
            else:
                raise RuntimeError("bulk runner: records held back with nothing in flight")
            self._pump()

    def _flush(self) -> None:
        """Send the unit being filled (after waiting for room in the pool)."""
        unit, self.batch = self.batch, []
        while len(self.in_flight) >= self.runner.max_workers * 2:
            self._collect(block=True)
        runner = self.runner
        if runner.policy.stop_sending:
            runner._not_attempted(unit, self.summary, self.tracker)
            self._release(unit)
            return
        action = runner.writer.preview if runner.dry_run else runner.writer.write
        self.in_flight[self.pool.submit(action, unit)] = unit
        self._collect(block=False)
        if runner.progress and time.monotonic() - self.last_checkpoint > CHECKPOINT_EVERY_SECONDS:
            runner._checkpoint(self.tracker)
            self.last_checkpoint = time.monotonic()

    def _collect(self, *, block: bool) -> None:
        """Account for finished units and free their keys."""
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            unit = self.in_flight.pop(future)
            error = future.exception()
            if error is not None:  # systemic (auth, configuration) or a bug: stop the run
                self._stop(unit, error)
            self._settle(unit, future.result())

    def _settle(self, unit: list[Item], outcomes: list[Outcome]) -> None:
        items = {item.index: item for item in unit}
        for outcome in outcomes:
            item = items.get(outcome.index)
            record, same_as = (item.record, item.same_as) if item is not None else (None, outcome.key)
            self.runner._account(outcome, record, self.summary, self.tracker, same_as)
        self._release(unit)

    def _stop(self, unit: list[Item], error: BaseException) -> NoReturn:
        """Stop the run on ``error``, leaving in the ledger what was done before: the units already
        running are waited for and accounted for; the failed unit and those not started are listed
        as not settled, with the reason."""
        self.runner._not_attempted(unit, self.summary, self.tracker, stop=error)
        for future, other in list(self.in_flight.items()):
            del self.in_flight[future]
            if future.cancel() or future.exception() is not None:
                self.runner._not_attempted(other, self.summary, self.tracker, stop=error)
            else:
                self._settle(other, future.result())
        raise error

    def _release(self, unit: list[Item]) -> None:
        for item in unit:
            self.gate.done(item.same_as)
