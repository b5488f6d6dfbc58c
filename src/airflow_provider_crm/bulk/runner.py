"""Write a stream of records with bounded concurrency, one outcome per record, resumable.

Memory stays flat however long the input is: records are read lazily, at most a few units are in
flight, at most :data:`MAX_HELD` records wait behind an earlier record of their key, and completed
positions are folded into a low-water mark (every record before it is done) that is also what a
retried task resumes from.

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
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_crm.bulk.ledger import (
    CREATED,
    INVALID,
    NOT_ATTEMPTED,
    REJECTED,
    UNCHANGED,
    UPDATED,
    WOULD_CREATE,
    WOULD_UPDATE,
    Ledger,
    Outcome,
)
from airflow_provider_crm.bulk.ordering import KeyGate
from airflow_provider_crm.bulk.policy import ErrorPolicy
from airflow_provider_crm.bulk.sources import BadRecord
from airflow_provider_crm.errors import CrmValidationError

log = logging.getLogger(__name__)

IDS_IN_SUMMARY = 100
"""Up to this many records, the XCom summary carries the key → remote id map."""
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

    __slots__ = ("index", "key", "prepared", "record", "same_as")

    def __init__(self, index: int, key: str, record: Any, prepared: Any, same_as: str | None = None) -> None:
        self.index = index
        self.key = key
        self.record = record
        self.prepared = prepared
        self.same_as = key if same_as is None else same_as


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
    """Where a task keeps how far it got (and what it counted), so a retry can skip what is done."""

    def load(self) -> tuple[int, dict[str, int]]: ...

    def save(self, done_through: int, counts: dict[str, int]) -> None: ...


@dataclass
class Summary:
    """Counts for XCom: bounded in size, never the payloads."""

    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    resumed_from: int = 0
    elapsed_s: float = 0.0
    ids: dict[str, str] = field(default_factory=dict)
    ledger_path: str | None = None
    dead_letter_path: str | None = None
    rate_limited: int = 0
    dry_run: bool = False

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        self.counts[outcome.action] = self.counts.get(outcome.action, 0) + 1
        if outcome.remote_id and len(self.ids) <= IDS_IN_SUMMARY:
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
            "rate_limited": self.rate_limited,
            "ledger_path": self.ledger_path,
            "dead_letter_path": self.dead_letter_path,
        }
        if self.dry_run:
            result.update({action: self.counts.get(action, 0) for action in (WOULD_CREATE, WOULD_UPDATE, INVALID)})
        if self.counts.get(NOT_ATTEMPTED):
            result[NOT_ATTEMPTED] = self.counts[NOT_ATTEMPTED]
        if self.total <= IDS_IN_SUMMARY:
            result["ids"] = dict(self.ids)
        return result


class _LowWater:
    """Tracks the first position not yet done, from completions that arrive out of order.

    ``counts`` holds the actions of the records before the mark, so a resumed try can report
    (and apply its policy to) the whole input, not only the part it wrote.
    """

    def __init__(self, start: int, counts: dict[str, int]) -> None:
        self.mark = start
        self.counts = dict(counts)
        self._done: dict[int, str | None] = {}

    def complete(self, index: int, action: str | None) -> None:
        """Record a finished position; ``action`` None means it must be tried again on resume."""
        if self.stuck:
            return  # later positions can't move the mark any more: no need to keep them
        self._done[index] = action
        while self.mark in self._done and self._done[self.mark] is not None:
            finished = self._done.pop(self.mark)
            assert finished is not None
            self.counts[finished] = self.counts.get(finished, 0) + 1
            self.mark += 1

    @property
    def stuck(self) -> bool:
        """The mark stopped for good at a record that must be tried again (a retry starts there)."""
        return self.mark in self._done and self._done[self.mark] is None


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
        self._lock = threading.Lock()

    def run(self, records: Iterable[dict[str, Any] | BadRecord]) -> Summary:
        started = time.monotonic()
        resume_from, earlier = self.progress.load() if self.progress and not self.dry_run else (0, {})
        summary = Summary(resumed_from=resume_from, dry_run=self.dry_run)
        summary.counts.update(earlier)
        summary.total = sum(earlier.values())
        summary.ledger_path = self.ledger.ledger.path
        summary.dead_letter_path = self.ledger.dead_letter.path
        low_water = _LowWater(resume_from, earlier)
        try:
            with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="crm-bulk") as pool:
                dispatch = _Dispatch(self, pool, summary, low_water)
                try:
                    for index, record in enumerate(records):
                        if index < resume_from:
                            continue
                        item = self._prepare(index, record, summary, low_water)
                        if item is not None:
                            dispatch.add(item)
                    dispatch.finish()
                except BaseException:
                    # Don't start queued units once the run is failing; let running ones finish.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            if self.progress and not self.dry_run:
                self._checkpoint(low_water, summary)
            summary.elapsed_s = time.monotonic() - started
            summary.rate_limited = self.rate_limited()
            self.ledger.close()
        return summary

    def _prepare(
        self, index: int, record: dict[str, Any] | BadRecord, summary: Summary, low_water: _LowWater
    ) -> Item | None:
        """The validated item, or None when the record was refused (and accounted for) on the spot."""
        if isinstance(record, BadRecord):
            outcome = Outcome(
                index, f"#{index}", self._refused, status="error", error_code="bad_record", error_message=record.reason
            )
            self._account(outcome, {"_raw": record.raw}, summary, low_water)
            return None
        key = self.writer.key(record, index)
        try:
            prepared = self.writer.prepare(record)
        except CrmValidationError as exc:
            outcome = Outcome(
                index, key, self._refused, status="error", error_code="validation_error", error_message=str(exc)
            )
            self._account(outcome, record, summary, low_water)
            return None
        return Item(index, key, record, prepared, self._same_record(prepared) if self._same_record else None)

    @property
    def _refused(self) -> str:
        return INVALID if self.dry_run else REJECTED

    def _checkpoint(self, low_water: _LowWater, summary: Summary) -> None:
        """Save the low-water mark with the counts of the records before it."""
        assert self.progress is not None
        with self._lock:
            self.progress.save(low_water.mark, dict(low_water.counts))

    def _account(self, outcome: Outcome, record: Any, summary: Summary, low_water: _LowWater) -> None:
        # A record the policy fails on is not "done": a retry must try it again. Neither is one
        # that was never sent.
        done = outcome.action != NOT_ATTEMPTED and not (outcome.rejected and self.policy.fail_fast)
        with self._lock:
            self.ledger.record(outcome, record)
            summary.add(outcome)
            low_water.complete(outcome.index, outcome.action if done else None)
            if not self.dry_run:  # a dry run reports on every record; it never stops early
                self.policy.on_outcome(outcome)

    def _not_attempted(self, unit: list[Item], summary: Summary, low_water: _LowWater) -> None:
        for item in unit:
            outcome = Outcome(
                item.index,
                item.key,
                NOT_ATTEMPTED,
                status="skipped",
                error_message="not sent: the run stopped after a rejected record (on_record_error='fail')",
            )
            self._account(outcome, item.record, summary, low_water)


class _Dispatch:
    """One run's units: filled from the key gate, sent to the pool, accounted for when they finish.

    Everything here runs on the thread that reads the input; only the writes run in the pool.
    """

    def __init__(self, runner: BulkRunner, pool: ThreadPoolExecutor, summary: Summary, low_water: _LowWater) -> None:
        self.runner = runner
        self.pool = pool
        self.summary = summary
        self.low_water = low_water
        self.gate = runner.key_gate()
        self.batch: list[Item] = []
        self.in_flight: dict[Future[list[Outcome]], list[Item]] = {}
        self.last_checkpoint = time.monotonic()

    def add(self, item: Item) -> None:
        """Take the next input item; returns once there is room to read another."""
        if self.runner.policy.stop_sending:
            self.runner._not_attempted([item], self.summary, self.low_water)
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
                self._flush()
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
        return not self.low_water.stuck and read - self.low_water.mark > MAX_SPAN

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
            runner._not_attempted(unit, self.summary, self.low_water)
            self._release(unit)
            return
        action = runner.writer.preview if runner.dry_run else runner.writer.write
        self.in_flight[self.pool.submit(action, unit)] = unit
        self._collect(block=False)
        if runner.progress and time.monotonic() - self.last_checkpoint > CHECKPOINT_EVERY_SECONDS:
            runner._checkpoint(self.low_water, self.summary)
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
                raise error
            records = {item.index: item.record for item in unit}
            for outcome in future.result():
                self.runner._account(outcome, records.get(outcome.index), self.summary, self.low_water)
            self._release(unit)

    def _release(self, unit: list[Item]) -> None:
        for item in unit:
            self.gate.done(item.same_as)
