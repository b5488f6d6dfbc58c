"""A retried bulk task resumes from its durable progress instead of rewriting what it wrote.

The progress lives in Airflow 3.3's task state store; before 3.3 a retry re-sends every record
through the idempotent writes, so nothing is duplicated.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk.ledger import JsonLinesWriter, Ledger
from airflow_provider_crm.bulk.policy import BulkRejectedError, ErrorPolicy
from airflow_provider_crm.bulk.progress import MAX_OWED_RANGES, STATE_KEY, Resume, TaskStateProgress, Tracker
from airflow_provider_crm.bulk.runner import BulkRunner, Summary
from airflow_provider_crm.bulk.writers.kustomer import KustomerUpdateWriter
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import HttpStatus, Sandbox, ServerError
from tests.airflow_versions import before_airflow_3_3, requires_airflow_3_3
from tests.conftest import use_connection
from tests.helpers import task_states, xcom_values

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkUpdateKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KustomerBulkUpdateKObjectsOperator(
        task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, max_workers=1, mode="per_record",
        retries=1, retry_delay=pendulum.duration(seconds=0),
    )
"""


@pytest.fixture
def kobject_ids(sandbox: Sandbox) -> list[str]:
    return [sandbox.kustomer.seed("orders", {"title": f"Order {i}"})["id"] for i in range(10)]


def run_with_seventh_write_refused(
    run_dag: Any, sandbox: Sandbox, kobject_ids: list[str], tmp_path: Path
) -> tuple[Any, Counter[str], Path]:
    """Update every seeded KObject; the 7th write meets an auth failure, which stops the run (it would
    hit every record alike) and the task's retry finishes. Returns the run, PUTs per id, the ledger."""
    records = [{"id": kobject_id, "custom": {"syncedBool": True}} for kobject_id in kobject_ids]
    sandbox.inject("kustomer", HttpStatus(status=401, method="PUT", path_pattern=f"/{kobject_ids[6]}$"))
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(DAG.replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger))))
    return run, Counter(e.path.rsplit("/", 1)[-1] for e in sandbox.writes("kustomer")), ledger


@requires_airflow_3_3("context['task_state_store'] (durable progress across task tries)")
def test_retry_skips_records_already_written(
    run_dag, sandbox: Sandbox, kustomer_conn: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    run, puts, ledger = run_with_seventh_write_refused(run_dag, sandbox, kobject_ids, tmp_path)

    assert task_states(run) == {"sync": "success"}
    assert [puts[i] for i in kobject_ids[:6]] == [1] * 6, "the retry sent nothing written before the failure"
    assert puts[kobject_ids[6]] == 2, "the failed record was sent again"
    # A record already in flight when the run stopped may be sent once more (PUT is idempotent).
    assert all(1 <= puts[i] <= 2 for i in kobject_ids[7:])
    assert all(o["custom"] == {"syncedBool": True} for o in sandbox.state("kustomer").kobjects("orders"))
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert {line["key"] for line in lines} == set(kobject_ids), "the ledger accounts for every record"
    assert {line["action"] for line in last_line_per_key(ledger).values()} == {"updated"}
    stopped = [line for line in lines if line["action"] == "not_attempted"]
    assert [line["key"] for line in stopped] == [kobject_ids[6]], "try 1's ledger says where and why it stopped"
    assert stopped[0]["status"] == "skipped" and "401" in stopped[0]["error_message"]


@before_airflow_3_3("Re-sending every record on retry (no task state store)")
def test_retry_resends_every_record_without_a_state_store(
    run_dag, sandbox: Sandbox, kustomer_conn: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    run, puts, ledger = run_with_seventh_write_refused(run_dag, sandbox, kobject_ids, tmp_path)

    assert task_states(run) == {"sync": "success"}
    assert [puts[i] for i in kobject_ids[:7]] == [2] * 7, "the retry sent the first try's records again"
    assert all(1 <= puts[i] <= 2 for i in kobject_ids[7:])
    kobjects = sandbox.state("kustomer").kobjects("orders")
    assert len(kobjects) == len(kobject_ids), "re-sent updates create nothing"
    assert all(o["custom"] == {"syncedBool": True} for o in kobjects)
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert {line["key"] for line in lines} == set(kobject_ids), "the ledger accounts for every record"


# -- A retry resends what can still succeed --------------------------------------------------------

RETRYING_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import OPERATOR
from airflow_provider_crm.retry_policy import crm_retry_kwargs

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    OPERATOR(
        task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, max_workers=1, mode="per_record",
        on_record_error="warn", max_reject_ratio=RATIO,
        retries=2, retry_delay=pendulum.duration(seconds=0), **crm_retry_kwargs(),
    )
"""


def retrying_dag(operator: str, records: list[dict], ledger: Path, ratio: float = 0.0) -> str:
    return (
        RETRYING_DAG.replace("OPERATOR", operator)
        .replace("RECORDS", repr(records))
        .replace("LEDGER", repr(str(ledger)))
        .replace("RATIO", repr(ratio))
    )


@pytest.fixture
def one_attempt(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    """``kustomer_default`` with ``max_attempts: 1``: a 503 reaches the runner instead of being retried in-task."""
    connection = sandbox.airflow_connection("kustomer") | {"extra": {"max_attempts": 1, "read_timeout": 10}}
    return use_connection(monkeypatch, "kustomer_default", connection)


def try_numbers(run: object) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def last_line_per_key(ledger: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    return {line["key"]: line for line in lines}


@requires_airflow_3_3("context['task_state_store'] (durable progress across task tries)")
def test_creates_refused_by_a_passing_outage_are_written_by_the_retry(
    run_dag, sandbox: Sandbox, one_attempt: str, tmp_path: Path
) -> None:
    """20 creates meet a 503 on try 1 (the server is healthy afterwards): try 2 writes each of them once."""
    records = [{"external_id": f"ext-{i}", "title": f"Order {i}"} for i in range(20)]
    sandbox.inject("kustomer", ServerError(status=503, count=20, method="POST"))
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(retrying_dag("KustomerBulkCreateKObjectsOperator", records, ledger))

    assert task_states(run) == {"sync": "success"}
    assert try_numbers(run) == {"sync": 2}, "try 1 failed (every record refused), try 2 wrote them"
    posts = [e for e in sandbox.writes("kustomer") if e.method == "POST"]
    refused = Counter(e.body["externalId"] for e in posts if e.status == 503)
    written = Counter(e.body["externalId"] for e in posts if e.status is not None and e.status < 300)
    assert refused == written == Counter(f"ext-{i}" for i in range(20)), "each record refused once, written once"
    assert [e.body["externalId"] for e in posts if e.status is not None and e.status < 300] == [
        f"ext-{i}" for i in range(20)
    ], "the retry sent them in input order"
    kobjects = sandbox.state("kustomer").kobjects("orders")
    assert sorted(o["externalId"] for o in kobjects) == sorted(f"ext-{i}" for i in range(20))
    last = last_line_per_key(ledger)
    assert {line["action"] for line in last.values()} == {"created"}
    first_try = [json.loads(line) for line in ledger.read_text().splitlines()][:20]
    assert {(line["action"], line["status"]) for line in first_try} == {("rejected", "retry")}
    summary = xcom_values(run)["sync"]
    assert (summary["total"], summary["created"], summary["rejected"]) == (20, 20, 0)


@requires_airflow_3_3("context['task_state_store'] (durable progress across task tries)")
def test_retry_resends_only_what_can_pass_and_in_input_order(
    run_dag, sandbox: Sandbox, one_attempt: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    """Try 1: four 503s, a 404 and an invalid record. Try 2 sends the four again, nothing else."""
    ids = [*kobject_ids, *(sandbox.kustomer.seed("orders", {"title": f"More {i}"})["id"] for i in range(10))]
    records: list[dict] = [{"id": kobject_id, "custom": {"syncNum": n}} for n, kobject_id in enumerate(ids)]
    missing = "f" * 24
    records[8] = {"id": ids[8], "custom": {"no suffix": 1}}  # refused before sending
    records[13] = {"id": missing, "custom": {"syncNum": 13}}  # Kustomer answers 404
    transient = [3, 4, 11, 17]
    for n in transient:
        sandbox.inject("kustomer", ServerError(status=503, method="PUT", path_pattern=f"/{ids[n]}$"))
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(retrying_dag("KustomerBulkUpdateKObjectsOperator", records, ledger, ratio=0.1))

    assert task_states(run) == {"sync": "success"}
    assert try_numbers(run) == {"sync": 2}, "6 of 20 refused on try 1 (over 10%); 2 of 20 for good after try 2"
    puts = [e for e in sandbox.writes("kustomer") if e.method == "PUT"]
    sent = Counter(e.path.rsplit("/", 1)[-1] for e in puts)
    expected = Counter({kobject_id: 1 for n, kobject_id in enumerate(ids) if n != 8}) + Counter(
        {ids[n]: 1 for n in transient}
    )
    expected[missing] = 1
    del expected[ids[13]]
    assert sent == expected, "only the four 503s were sent again; the 404 and the invalid record were not"
    second_try = [e.path.rsplit("/", 1)[-1] for e in puts[len(records) - 1 :]]
    assert second_try == [ids[n] for n in transient], "the retry sent them in input order"
    state = sandbox.state("kustomer")
    for n, kobject_id in enumerate(ids):
        if n not in (8, 13):
            assert state.get("orders", kobject_id)["custom"] == {"syncNum": n}
    last = last_line_per_key(ledger)
    assert last[missing]["status"] == "error" and last[ids[8]]["status"] == "error"
    assert all(last[ids[n]]["action"] == "updated" for n in transient)
    summary = xcom_values(run)["sync"]
    assert (summary["total"], summary["updated"], summary["rejected"]) == (20, 18, 2)


@requires_airflow_3_3("context['task_state_store'] (durable progress across task tries)")
def test_a_record_after_a_resent_one_of_its_key_is_sent_again_after_it(
    run_dag, sandbox: Sandbox, one_attempt: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    """The last record of a key wins across tries too: resending an earlier one alone would undo the later one."""
    hot = kobject_ids[0]
    records = [
        {"id": kobject_ids[1], "custom": {"stepNum": 0}},
        {"id": hot, "custom": {"stepNum": 1}},  # 503 on try 1
        {"id": kobject_ids[2], "custom": {"stepNum": 2}},
        {"id": hot, "custom": {"stepNum": 3}},  # written on try 1, after the refusal
        {"id": kobject_ids[3], "custom": {"stepNum": 4}},
    ]
    sandbox.inject("kustomer", ServerError(status=503, method="PUT", path_pattern=f"/{hot}$"))
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(retrying_dag("KustomerBulkUpdateKObjectsOperator", records, ledger))

    assert task_states(run) == {"sync": "success"}
    hot_puts = [e.body["custom"]["stepNum"] for e in sandbox.writes("kustomer") if e.path.endswith(hot)]
    assert hot_puts == [1, 3, 1, 3], "try 2 sent both records of the key, in input order"
    assert sandbox.state("kustomer").get("orders", hot)["custom"] == {"stepNum": 3}
    others = Counter(e.path.rsplit("/", 1)[-1] for e in sandbox.writes("kustomer") if not e.path.endswith(hot))
    assert others == Counter(kobject_ids[1:4]), "records of other keys were not sent again"
    assert xcom_values(run)["sync"]["updated"] == 5


# -- The runner across tries, with a dict as the task state store ----------------------------------


class DictStore:
    """The three calls the bulk operators make on ``context["task_state_store"]``."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object, *, retention: object = None) -> None:
        self.values[key] = json.loads(json.dumps(value))  # what goes through the execution API

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def run_try(
    store: DictStore, records: list[dict], tmp_path: Path, *, policy: str = "warn", ratio: float = 1.0, **kwargs
) -> tuple[ErrorPolicy, Summary]:
    """One task try: a runner over ``records`` resuming from ``store``, ledger appended as the operator does."""
    hook = KustomerHook()
    hook.use_rate_limit(0)
    progress = TaskStateProgress(store)
    append = progress.load().started
    ledger = Ledger(JsonLinesWriter(tmp_path / "ledger.jsonl", append=append), JsonLinesWriter(None))
    error_policy = ErrorPolicy(policy, ratio)
    writer = KustomerUpdateWriter(hook, "orders")
    runner = BulkRunner(writer, ledger, error_policy, max_workers=1, progress=progress, **kwargs)
    return error_policy, runner.run(records)


def puts_per_position(sandbox: Sandbox, ids: list[str], since: int = 0) -> list[int]:
    sent = Counter(e.path.rsplit("/", 1)[-1] for e in sandbox.writes("kustomer")[since:] if e.method == "PUT")
    return [sent[kobject_id] for kobject_id in ids]


def test_owed_records_past_the_bound_are_resent_from_the_first_one_without_room(
    sandbox: Sandbox, one_attempt: str, tmp_path: Path
) -> None:
    """Three ranges of owed positions fit; the fourth stops the mark there, and a retry resends all from it."""
    ids = [sandbox.kustomer.seed("orders", {"title": f"Order {i}"})["id"] for i in range(30)]
    records = [{"id": kobject_id, "custom": {"syncNum": n}} for n, kobject_id in enumerate(ids)]
    for n in (2, 5, 8, 11, 14):
        sandbox.inject("kustomer", ServerError(status=503, method="PUT", path_pattern=f"/{ids[n]}$"))
    store = DictStore()
    _, summary = run_try(store, records, tmp_path, max_owed_ranges=3)
    assert summary.retry_later == 5
    state = store.values[STATE_KEY]
    assert (state["done_through"], state["owed"]) == (11, [[2, 2], [5, 5], [8, 8]])  # type: ignore[index]

    sandbox.inject("kustomer", ServerError(status=503, method="PUT", path_pattern=f"/{ids[5]}$"))  # fails again
    before = len(sandbox.writes("kustomer"))
    _, summary = run_try(store, records, tmp_path, max_owed_ranges=3)
    resent = {2, 5, 8, *range(11, 30)}
    assert puts_per_position(sandbox, ids, before) == [int(n in resent) for n in range(30)]
    assert (summary.total, summary.counts.get("updated"), summary.retry_later) == (30, 29, 1)
    state = store.values[STATE_KEY]
    assert (state["done_through"], state["owed"]) == (30, [[5, 5]])  # type: ignore[index]

    before = len(sandbox.writes("kustomer"))
    _, summary = run_try(store, records, tmp_path, max_owed_ranges=3)
    assert puts_per_position(sandbox, ids, before) == [int(n == 5) for n in range(30)], "try 3 sends only #5"
    assert (summary.total, summary.counts, summary.retry_later) == (30, {"updated": 30}, 0)
    assert all(sandbox.state("kustomer").get("orders", i)["custom"] == {"syncNum": n} for n, i in enumerate(ids))


def test_the_state_stays_small_for_a_million_records_with_a_tenth_owed() -> None:
    """Owed positions are bounded ranges: past :data:`MAX_OWED_RANGES` the mark stops instead of growing."""
    tracker = Tracker(Resume())
    for index in range(1_000_000):
        tracker.complete(index, "rejected" if index % 10 == 3 else "updated", index % 10 == 3, f"k-{index}")
        if tracker.stuck:
            break
    snapshot = tracker.snapshot({"index": 3, "key": "k-3", "error_code": "http_503", "error_message": "x" * 500}, [])
    size = len(json.dumps(snapshot.to_state()))
    assert len(snapshot.owed) == MAX_OWED_RANGES and size < 65_535, "under Airflow's default max_value_storage_bytes"
    assert snapshot.done_through == 10 * MAX_OWED_RANGES + 3, "a retry resends from the first owed record without room"
    assert len(json.dumps(Resume(10**9, [(10**9 - 2 * n, 10**9 - 2 * n) for n in range(2000)]).to_state())) < 65_535


def test_a_retry_after_a_refusal_for_good_sends_nothing_and_keeps_the_reason(
    sandbox: Sandbox, one_attempt: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    """on_record_error='fail' stopped at an invalid record: a retry can't change that, and says why."""
    records: list[dict] = [{"id": kobject_id, "custom": {"syncNum": n}} for n, kobject_id in enumerate(kobject_ids)]
    records[3] = {"id": kobject_ids[3], "custom": {"no suffix": 1}}
    store = DictStore()
    policy, summary = run_try(store, records, tmp_path, policy="fail", ratio=0.0)
    with pytest.raises(BulkRejectedError, match=f"First: {kobject_ids[3]}: validation_error") as first:
        policy.check(rejected=summary.rejected, total=summary.total, retry_later=summary.retry_later)
    assert not first.value.retryable
    before = len(sandbox.writes("kustomer"))

    policy, summary = run_try(store, records, tmp_path, policy="fail", ratio=0.0)
    assert len(sandbox.writes("kustomer")) == before, "the retry sent nothing"
    with pytest.raises(BulkRejectedError) as second:
        policy.check(rejected=summary.rejected, total=summary.total, retry_later=summary.retry_later)
    assert f"First: {kobject_ids[3]}: validation_error" in str(second.value), "the first reason is kept"
    assert "no suffix" in str(second.value)


def test_an_outage_over_every_try_keeps_the_first_reason(
    sandbox: Sandbox, one_attempt: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    """Each try resends every record refused by the outage; each error names the first refusal."""
    records = [{"id": kobject_id, "custom": {"syncNum": n}} for n, kobject_id in enumerate(kobject_ids)]
    sandbox.inject("kustomer", ServerError(status=503, method="PUT", count=len(records) * 3))
    store = DictStore()
    for attempt in (1, 2, 3):
        policy, summary = run_try(store, records, tmp_path)
        assert puts_per_position(sandbox, kobject_ids) == [attempt] * len(records)
        with pytest.raises(BulkRejectedError, match=f"every record was rejected.*First: {kobject_ids[0]}: ") as caught:
            policy.check(rejected=summary.rejected, total=summary.total, retry_later=summary.retry_later)
        assert caught.value.retryable and caught.value.retry_later == len(records)
    policy, summary = run_try(store, records, tmp_path)
    assert puts_per_position(sandbox, kobject_ids) == [4] * len(records)
    assert (summary.total, summary.counts) == (len(records), {"updated": len(records)})
    assert all(o["custom"] == {"syncNum": n} for n, o in enumerate(sandbox.state("kustomer").kobjects("orders")))
