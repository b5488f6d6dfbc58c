"""The bulk runner alone: a fake writer in memory, no HTTP, no Airflow.

What is checked: units never exceed the writer's batch size, records of one key are written one at a
time and in input order, every input record gets exactly one outcome (bad input and refused records
included), a dry run previews instead of writing, and ``fail`` stops sending after a rejection.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk.ledger import (
    INVALID,
    NOT_ATTEMPTED,
    REJECTED,
    UPDATED,
    WOULD_UPDATE,
    JsonLinesWriter,
    Ledger,
    Outcome,
)
from airflow_provider_crm.bulk.policy import ErrorPolicy
from airflow_provider_crm.bulk.runner import BulkRunner, Item, Summary
from airflow_provider_crm.bulk.sources import BadRecord
from airflow_provider_crm.errors import CrmValidationError


class FakeWriter:
    """Keys records by ``key``, refuses records without one, writes by remembering, fails ``"refuse"`` values."""

    def __init__(self, batch_size: int = 1) -> None:
        self.batch_size = batch_size
        self.units: list[list[int]] = []
        self.previewed: list[list[int]] = []
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []
        self._lock = threading.Lock()

    def key(self, record: dict[str, Any], index: int) -> str:
        return str(record.get("key") or f"#{index}")

    def prepare(self, record: dict[str, Any]) -> Any:
        if "key" not in record:
            raise CrmValidationError("key is required", field="key")
        return dict(record)

    def write(self, items: list[Item]) -> list[Outcome]:
        with self._lock:
            self.units.append([item.index for item in items])
            for item in items:
                if item.key in self.in_flight:
                    self.overlaps.append(item.key)
                self.in_flight.add(item.key)
        outcomes = [self._outcome(item) for item in items]
        with self._lock:
            self.in_flight.difference_update(item.key for item in items)
        return outcomes

    def preview(self, items: list[Item]) -> list[Outcome]:
        self.previewed.append([item.index for item in items])
        return [Outcome(item.index, item.key, WOULD_UPDATE, remote_id=item.key) for item in items]

    def _outcome(self, item: Item) -> Outcome:
        if item.prepared.get("value") == "refuse":
            return Outcome(item.index, item.key, REJECTED, status="error", error_code="refused")
        return Outcome(item.index, item.key, UPDATED, remote_id=f"id-{item.key}")


def run(
    records: list[Any],
    writer: FakeWriter,
    *,
    policy: ErrorPolicy | None = None,
    dry_run: bool = False,
    max_workers: int = 1,
    ledger_path: Path | None = None,
) -> Summary:
    ledger = Ledger(JsonLinesWriter(ledger_path), JsonLinesWriter(None))
    runner = BulkRunner(writer, ledger, policy or ErrorPolicy("skip"), max_workers=max_workers, dry_run=dry_run)
    return runner.run(iter(records))


def test_units_are_filled_up_to_the_batch_size_in_input_order() -> None:
    writer = FakeWriter(batch_size=3)
    summary = run([{"key": f"k{n}"} for n in range(7)], writer)
    assert writer.units == [[0, 1, 2], [3, 4, 5], [6]]
    assert (summary.total, summary.counts) == (7, {UPDATED: 7})


def test_a_unit_never_holds_one_key_twice() -> None:
    writer = FakeWriter(batch_size=10)
    run([{"key": "a"}, {"key": "b"}, {"key": "a"}, {"key": "c"}], writer)
    assert writer.units == [[0, 1, 3], [2]], "the second 'a' waits for the first; 'c' does not wait"


def test_records_of_one_key_are_written_in_input_order_and_never_together() -> None:
    writer = FakeWriter()
    records = [{"key": "hot" if n % 2 == 0 else f"cold-{n}", "value": n} for n in range(40)]
    summary = run(records, writer, max_workers=4)
    hot_order = [unit[0] for unit in writer.units if unit[0] % 2 == 0]
    assert hot_order == list(range(0, 40, 2))
    assert writer.overlaps == []
    assert summary.counts == {UPDATED: 40}


def test_every_record_gets_one_outcome_in_the_ledger(tmp_path: Path) -> None:
    writer = FakeWriter()
    records = [{"key": "a"}, BadRecord("not json", "line 2 is not JSON"), {"value": 1}, {"key": "b", "value": "refuse"}]
    summary = run(records, writer, ledger_path=tmp_path / "ledger.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    by_index = {line["index"]: line for line in lines}
    assert sorted(by_index) == [0, 1, 2, 3] and len(lines) == 4
    assert by_index[0]["action"] == UPDATED and by_index[0]["remote_id"] == "id-a"
    assert (by_index[1]["action"], by_index[1]["error_code"]) == (REJECTED, "bad_record")
    assert (by_index[2]["action"], by_index[2]["error_code"]) == (REJECTED, "validation_error")
    assert (by_index[3]["action"], by_index[3]["error_code"]) == (REJECTED, "refused")
    assert writer.units == [[0], [3]], "records refused before sending are never written"
    assert (summary.total, summary.rejected) == (4, 3)
    assert summary.as_xcom()["ids"] == {"a": "id-a"}


def test_a_dry_run_previews_and_never_writes() -> None:
    writer = FakeWriter(batch_size=2)
    summary = run([{"key": "a"}, {"key": "b"}, {"value": 1}], writer, dry_run=True)
    assert writer.units == []
    assert writer.previewed == [[0, 1]]
    assert summary.counts == {WOULD_UPDATE: 2, INVALID: 1}
    assert summary.as_xcom()[INVALID] == 1


def test_fail_stops_sending_after_the_first_rejection() -> None:
    writer = FakeWriter()
    records = [{"key": "a"}, {"key": "b", "value": "refuse"}, *({"key": f"k{n}"} for n in range(20))]
    summary = run(records, writer, policy=ErrorPolicy("fail"))
    sent_after = [unit for unit in writer.units if unit[0] > 1]
    assert writer.units[:2] == [[0], [1]]
    assert len(sent_after) <= 2, "only units already queued when the rejection arrived may still go"
    assert summary.counts == {UPDATED: 1 + len(sent_after), REJECTED: 1, NOT_ATTEMPTED: 20 - len(sent_after)}
    assert summary.total == 22


def test_a_writer_that_raises_stops_the_run_and_lists_the_unit_as_not_settled(tmp_path: Path) -> None:
    class Broken(FakeWriter):
        def write(self, items: list[Item]) -> list[Outcome]:
            raise RuntimeError("the vendor refused the token")

    with pytest.raises(RuntimeError, match="refused the token"):
        run([{"key": "a"}], Broken(), ledger_path=tmp_path / "ledger.jsonl")
    (line,) = [json.loads(text) for text in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert (line["action"], line["error_code"]) == (NOT_ATTEMPTED, "RuntimeError")


def test_a_ledger_line_names_every_outcome_field() -> None:
    from dataclasses import asdict

    from airflow_provider_crm.bulk.ledger import RETRY, Outcome

    outcome = Outcome(3, "k", "rejected", remote_id="r", status=RETRY, error_code="http_503", error_message="busy")
    assert outcome.as_line() == asdict(outcome)
