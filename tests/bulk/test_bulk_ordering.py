"""Records that share a key are written one at a time and in input order; other keys keep flowing.

The Kaiten test runs the operator in real Airflow against the sandbox, slowed down so that two
read-merge-writes of one customer would overlap if the runner let them. The runner tests use a
recording writer in-process to check the scheduling itself: which keys are in flight together,
what a unit holds, how much is read ahead, and that policies, resume and dry runs still hold.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from airflow_provider_crm.bulk import runner as runner_module
from airflow_provider_crm.bulk.ledger import NOT_ATTEMPTED, REJECTED, UPDATED, WOULD_UPDATE, JsonLinesWriter, Ledger
from airflow_provider_crm.bulk.policy import ErrorPolicy
from airflow_provider_crm.bulk.progress import Resume
from airflow_provider_crm.bulk.runner import BulkRunner, Item, Outcome
from airflow_provider_crm.bulk.sources import BadRecord
from airflow_provider_crm.bulk.writers.hubspot import HubSpotBatchWriter
from airflow_provider_crm.operators.bulk import HubSpotBulkUpdateOrdersOperator
from airflow_provider_crm.sandbox import Latency, Sandbox
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp
from airflow_provider_crm.sandbox.vendors.kaiten.app import KaitenApp
from tests.helpers import task_states, xcom_values

# -- Kaiten in Airflow ---------------------------------------------------------------------------

KAITEN_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KaitenBulkUpdateCustomersOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KaitenBulkUpdateCustomersOperator(task_id="sync", records=RECORDS, max_workers=4, on_record_error="fail")
"""

HOT = "hot-co"
HOT_UPDATES = 30
OTHERS = 50


def kaiten_records() -> list[dict[str, Any]]:
    """30 updates of one customer (name and domain in turn), each followed by a record of another."""
    others = [{"slug": f"other-{n}", "domain": f"new-{n}.example.com"} for n in range(OTHERS)]
    records: list[dict[str, Any]] = []
    for j in range(HOT_UPDATES):
        change = {"name": f"Hot {j}"} if j % 2 == 0 else {"domain": f"hot-{j}.example.com"}
        records.append({"slug": HOT, **change})
        records.extend(others[j * OTHERS // HOT_UPDATES : (j + 1) * OTHERS // HOT_UPDATES])
    return records


def test_kaiten_bulk_writes_one_slug_in_input_order_and_keeps_its_fields(
    run_dag: Any, sandbox: Sandbox, kaiten_conn: str
) -> None:
    app = cast(KaitenApp, sandbox.app("kaiten"))
    app.seed(HOT, "Hot", external_customer_id="crm-hot", domain="hot.example.com")
    for n in range(OTHERS):
        app.seed(f"other-{n}", f"Other {n}", domain=f"old-{n}.example.com")
    # Every request for the hot customer is slowed down, so overlapping read-merge-writes would
    # interleave in the journal (and lose each other's changes).
    sandbox.inject("kaiten", Latency(seconds=0.05, count=2 * HOT_UPDATES, path_pattern=f"/customers/{HOT}$"))
    records = kaiten_records()

    run = run_dag(KAITEN_DAG.replace("RECORDS", repr(records)))

    assert task_states(run) == {"sync": "success"}
    summary = xcom_values(run)["sync"]
    assert isinstance(summary, dict)
    assert (summary["total"], summary["updated"], summary["rejected"]) == (len(records), len(records), 0)
    hot = sandbox.state("kaiten").get(HOT)
    assert hot["name"] == f"Hot {HOT_UPDATES - 2}", "the last name wins"
    assert hot["domain"] == f"hot-{HOT_UPDATES - 1}.example.com", "the last domain wins"
    assert hot["externalCustomerId"] == "crm-hot", "a field no record touched is kept"
    for n in range(OTHERS):
        other = sandbox.state("kaiten").get(f"other-{n}")
        assert (other["name"], other["domain"]) == (f"Other {n}", f"new-{n}.example.com")

    hot_requests = [e for e in sandbox.journal("kaiten") if e.path.endswith(f"/customers/{HOT}")]
    assert [e.method for e in hot_requests] == ["GET", "PUT"] * HOT_UPDATES, (
        "each read-merge-write of the customer starts after the previous one finished"
    )
    expected, state = [], {"name": "Hot", "externalCustomerId": "crm-hot", "domain": "hot.example.com"}
    for record in records:
        if record["slug"] == HOT:
            state = state | {k: v for k, v in record.items() if k != "slug"}
            expected.append(dict(state))
    assert [e.body for e in hot_requests if e.method == "PUT"] == expected, "PUTs arrive in input order"
    assert {e.status for e in hot_requests} <= {200, 204}


def test_hubspot_batches_never_repeat_an_order_and_the_last_value_wins(hubspot_conn: str, sandbox: Sandbox) -> None:
    app = cast(HubSpotApp, sandbox.app("hubspot"))
    hot = [app.seed({"hs_order_name": f"hot {n}", "hs_currency_code": "EUR"}) for n in range(3)]
    others = [app.seed({"hs_order_name": f"other {n}"}) for n in range(40)]
    records: list[dict[str, Any]] = []
    for round_ in range(8):
        records.extend({"id": order_id, "properties": {"hs_order_name": f"hot v{round_}"}} for order_id in hot)
        records.extend({"id": order_id, "properties": {"hs_order_name": "touched"}} for order_id in others[round_::8])

    summary = HubSpotBulkUpdateOrdersOperator(task_id="t", records=records, batch_size=10, rate_limit=0).execute({})

    assert (summary["updated"], summary["rejected"]) == (len(records), 0)
    updates = [e for e in sandbox.writes("hubspot") if e.path.endswith("/batch/update")]
    batches = [[entry["id"] for entry in e.body["inputs"]] for e in updates]
    assert all(len(set(ids)) == len(ids) for ids in batches), "no batch repeats an order"
    assert sum(len(ids) for ids in batches) == len(records)
    for order_id in hot:
        sent = [
            entry["properties"]["hs_order_name"]
            for e in updates
            for entry in e.body["inputs"]
            if entry["id"] == order_id
        ]
        assert sent == [f"hot v{round_}" for round_ in range(8)], "one order's updates arrive in input order"
        stored = sandbox.state("hubspot").get(order_id)["properties"]
        assert (stored["hs_order_name"], stored["hs_currency_code"]) == ("hot v7", "EUR")


# -- the runner, with a recording writer ---------------------------------------------------------


class RecordingWriter:
    """Writes nothing; notes which keys are in flight together and in which order writes start.

    A unit lingers (up to ``linger`` seconds) until ``company`` units are in flight, so units that
    the runner lets overlap do overlap; with ``once``, only the units that arrive before a first wait ended.
    """

    def __init__(
        self,
        *,
        batch_size: int = 1,
        company: int = 4,
        linger: float = 0.05,
        once: bool = False,
        reject: frozenset[int] = frozenset(),
    ) -> None:
        self.batch_size = batch_size
        self.once = once
        self.lingered = False
        self.company = company
        self.linger = linger
        self.reject = reject
        self._cond = threading.Condition()
        self._keys_in_flight: Counter[str] = Counter()
        self.units_in_flight = 0
        self.peak_units = 0
        self.finished = 0
        self.overlaps: list[str] = []
        self.repeats: list[list[str]] = []
        self.started: dict[str, list[int]] = defaultdict(list)
        self.last_written: dict[str, int] = {}
        self.on_write: list[Any] = []

    def key(self, record: dict[str, Any], index: int) -> str:
        return str(record["key"]) if record.get("key") else f"#{index}"

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def write(self, items: list[Item]) -> list[Outcome]:
        keys = [item.same_as for item in items]
        with self._cond:
            for hook in self.on_write:
                hook(items)
            if len(set(keys)) != len(keys):
                self.repeats.append(keys)
            for item in items:
                if self._keys_in_flight[item.same_as]:
                    self.overlaps.append(item.same_as)
                self._keys_in_flight[item.same_as] += 1
                self.started[item.key].append(item.index)
            self.units_in_flight += 1
            self.peak_units = max(self.peak_units, self.units_in_flight)
            self._cond.notify_all()
            self._cond.wait_for(self._enough_company, timeout=self.linger)
            self.lingered = True
            for item in items:
                self.last_written[item.key] = item.index
                self._keys_in_flight[item.same_as] -= 1
            self.units_in_flight -= 1
            self.finished += len(items)
        return [
            Outcome(item.index, item.key, REJECTED, status="error", error_code="refused")
            if item.index in self.reject
            else Outcome(item.index, item.key, UPDATED)
            for item in items
        ]

    def _enough_company(self) -> bool:
        return self.units_in_flight >= self.company or (self.once and self.lingered)

    def preview(self, items: list[Item]) -> list[Outcome]:
        self.write(items)
        return [Outcome(item.index, item.key, WOULD_UPDATE) for item in items]


class FakeProgress:
    def __init__(self, done_through: int = 0, counts: dict[str, int] | None = None) -> None:
        self.loaded = Resume(done_through, counts=dict(counts or {}))
        self.saved: list[tuple[int, dict[str, int]]] = []

    def load(self) -> Resume:
        return self.loaded

    def save(self, resume: Resume) -> None:
        self.saved.append((resume.done_through, resume.counts))


def hot_records(hot_keys: int = 3, repeats: int = 20, distinct_between: int = 1) -> list[dict[str, Any]]:
    """Each hot key ``repeats`` times, round robin, with ``distinct_between`` one-off keys after each."""
    records: list[dict[str, Any]] = []
    for round_ in range(repeats):
        for hot in range(hot_keys):
            records.append({"key": f"hot-{hot}", "value": round_})
            records.extend({"key": f"once-{len(records)}-{n}"} for n in range(distinct_between))
    return records


def run(
    writer: RecordingWriter,
    records: Any,
    tmp_path: Path,
    *,
    policy: str = "warn",
    dry_run: bool = False,
    progress: FakeProgress | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ledger_path = tmp_path / "ledger.jsonl"
    runner = BulkRunner(
        writer,
        Ledger(JsonLinesWriter(ledger_path), JsonLinesWriter(None)),
        ErrorPolicy(policy, 1.0),
        max_workers=4,
        dry_run=dry_run,
        progress=progress,
        **kwargs,
    )
    summary = runner.run(records).as_xcom()
    return summary, [json.loads(line) for line in ledger_path.read_text().splitlines()]


def input_order(records: list[dict[str, Any]], start: int = 0) -> dict[str, list[int]]:
    order: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        if index >= start:
            order[str(record["key"])].append(index)
    return order


@pytest.mark.parametrize("batch_size", [1, 3, 10])
def test_a_key_is_never_in_two_units_in_flight_and_keeps_input_order(tmp_path: Path, batch_size: int) -> None:
    records = hot_records()
    writer = RecordingWriter(batch_size=batch_size)
    summary, ledger = run(writer, records, tmp_path)

    assert writer.overlaps == [], "a key was in two units in flight at once"
    assert writer.repeats == [], "a unit held a key twice"
    assert dict(writer.started) == input_order(records), "per key, writes start in input order"
    assert all(writer.last_written[key] == indices[-1] for key, indices in input_order(records).items())
    assert sorted(line["index"] for line in ledger) == list(range(len(records)))
    assert summary["updated"] == len(records)
    assert writer.peak_units >= 2, "other keys kept flowing while the hot keys waited"


def test_records_the_vendor_takes_for_one_are_ordered_as_one_key(tmp_path: Path) -> None:
    """A writer's ``same_record`` (HubSpot: ids without case or padding) decides what waits, not the spelling."""
    one_order: list[int] = []
    clashes: list[list[int]] = []
    in_flight: list[int] = []
    lock = threading.Lock()

    class Folding(RecordingWriter):
        @staticmethod
        def same_record(prepared: dict[str, Any]) -> str:
            return HubSpotBatchWriter.same_record({"id": prepared["key"], "id_property": "order_ref"})

        def write(self, items: list[Item]) -> list[Outcome]:
            mine = [item.index for item in items if item.index < 12]
            with lock:
                if mine and (in_flight or len(mine) > 1):
                    clashes.append([*in_flight, *mine])
                in_flight.extend(mine)
                one_order.extend(mine)
            try:
                return super().write(items)
            finally:
                with lock:
                    for index in mine:
                        in_flight.remove(index)

    spellings = ["Order-1", "order-1", " ORDER-1 ", "order-1\t"]
    records = [{"key": spellings[n % 4]} for n in range(12)] + [{"key": f"k-{n}"} for n in range(12)]
    writer = Folding(batch_size=3)
    summary, _ = run(writer, records, tmp_path)

    assert clashes == [], "two spellings of one order were written together"
    assert one_order == list(range(12)), "the spellings were written in input order"
    assert summary["updated"] == 24


def test_distinct_keys_still_run_max_workers_units_at_once(tmp_path: Path) -> None:
    records = [{"key": f"k-{n}"} for n in range(40)]
    writer = RecordingWriter(company=4, linger=10, once=True)
    summary, _ = run(writer, records, tmp_path)
    assert writer.peak_units == 4
    assert summary["updated"] == 40


def test_other_keys_are_written_while_a_key_waits(tmp_path: Path) -> None:
    """No head-of-line blocking: the run goes on past a record that waits for its key."""
    records = [{"key": "slow"}, {"key": "slow"}, *({"key": f"k-{n}"} for n in range(20))]
    others_done_meanwhile: list[bool] = []

    class SlowFirst(RecordingWriter):
        def write(self, items: list[Item]) -> list[Outcome]:
            if items[0].index == 0:
                deadline = time.monotonic() + 30
                while self.finished < 20 and time.monotonic() < deadline:
                    time.sleep(0.005)
                others_done_meanwhile.append(self.finished == 20)
            return super().write(items)

    writer = SlowFirst(company=1)
    summary, _ = run(writer, records, tmp_path)
    assert others_done_meanwhile == [True], "the other keys were written while the first record was slow"
    assert writer.started["slow"] == [0, 1] and summary["updated"] == 22


def test_read_ahead_stays_bounded_behind_one_key(tmp_path: Path) -> None:
    consumed = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for n in range(200):
            consumed += 1
            yield {"key": "only", "n": n}

    writer = RecordingWriter(company=1)
    read_ahead: list[int] = []
    writer.on_write.append(lambda items: read_ahead.append(consumed - writer.finished))
    max_held = 5
    summary, _ = run(writer, source(), tmp_path, max_held=max_held)

    assert summary["updated"] == 200
    assert max(read_ahead) <= max_held + 2, "records read but not written stay within the bound"
    assert writer.started["only"] == list(range(200))


def reader_waits_for_room(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside the runner's wait for room to read on."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "_make_room":
            return True
        frame = frame.f_back
    return False


def test_read_ahead_stays_within_the_span_behind_a_slow_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "MAX_SPAN", 10)
    consumed = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for n in range(100):
            consumed += 1
            yield {"key": f"k-{n}"}

    reader = threading.current_thread()
    seen_while_slow: list[int] = []

    class SlowFirst(RecordingWriter):
        def write(self, items: list[Item]) -> list[Outcome]:
            if items[0].index == 0:
                # Hold the first record until the reader stops (or has read everything).
                deadline = time.monotonic() + 30
                while consumed < 100 and not reader_waits_for_room(reader) and time.monotonic() < deadline:
                    time.sleep(0.005)
                seen_while_slow.append(consumed)
            return super().write(items)

    summary, _ = run(SlowFirst(company=1), source(), tmp_path)
    assert summary["updated"] == 100
    assert seen_while_slow[0] <= 10 + 1, "reading stops MAX_SPAN records past the unfinished one"


def test_a_rejected_record_does_not_block_later_records_of_its_key(tmp_path: Path) -> None:
    records = hot_records(hot_keys=1, repeats=10)
    first_hot = 0
    writer = RecordingWriter(reject=frozenset({first_hot}))
    summary, ledger = run(writer, records, tmp_path, policy="warn")
    assert writer.started["hot-0"] == input_order(records)["hot-0"]
    assert (summary["rejected"], summary["updated"]) == (1, len(records) - 1)
    assert {line["index"]: line["action"] for line in ledger}[first_hot] == REJECTED


def test_fail_policy_stops_sending_and_accounts_for_held_records(tmp_path: Path) -> None:
    records = hot_records(hot_keys=2, repeats=30)
    rejected = 9
    writer = RecordingWriter(reject=frozenset({rejected}))
    progress = FakeProgress()
    summary, ledger = run(writer, records, tmp_path, policy="fail", progress=progress)

    actions = {line["index"]: line["action"] for line in ledger}
    assert sorted(actions) == list(range(len(records))), "every record accounted for once"
    assert len(ledger) == len(records)
    assert actions[rejected] == REJECTED
    sent = {index for indices in writer.started.values() for index in indices}
    not_sent = {index for index, action in actions.items() if action == NOT_ATTEMPTED}
    assert not_sent and not_sent == set(range(len(records))) - sent
    assert summary["not_attempted"] == len(not_sent)
    # The refusal is settled (refused for good), so the mark passes it: a retry starts at the first
    # record never sent, whichever records the workers had sent before the stop (that depends on timing).
    assert progress.saved[-1][0] == min(not_sent), "a retry starts at the first record never settled"


def test_resume_skips_done_records_and_the_mark_reaches_the_end(tmp_path: Path) -> None:
    records = hot_records()
    progress = FakeProgress(30, {UPDATED: 30})
    writer = RecordingWriter()
    summary, ledger = run(writer, records, tmp_path, progress=progress)

    assert dict(writer.started) == input_order(records, start=30)
    assert sorted(line["index"] for line in ledger) == list(range(30, len(records)))
    assert (summary["total"], summary["updated"], summary["resumed_from"]) == (len(records), len(records), 30)
    assert progress.saved[-1] == (len(records), {UPDATED: len(records)})


def test_dry_run_previews_every_record_in_key_order(tmp_path: Path) -> None:
    records = hot_records(hot_keys=2, repeats=10)
    writer = RecordingWriter(batch_size=4)
    summary, ledger = run(writer, records, tmp_path, dry_run=True, policy="fail")
    assert writer.overlaps == [] and writer.repeats == []
    assert summary["would_update"] == len(records) and len(ledger) == len(records)


def test_a_stuck_mark_does_not_stop_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run under the fail policy reports every record, though its mark stops at the first invalid one."""
    monkeypatch.setattr(runner_module, "MAX_SPAN", 10)
    records: list[Any] = [BadRecord("not an object", "[]"), *({"key": f"k-{n}"} for n in range(50))]
    summary, ledger = run(RecordingWriter(company=1), records, tmp_path, dry_run=True, policy="fail")
    assert (summary["invalid"], summary["would_update"], len(ledger)) == (1, 50, 51)
