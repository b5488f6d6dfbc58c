"""Kustomer bulk operators writing through bulk jobs, against the sandbox over loopback.

Kustomer's bulk endpoints take up to 100 items per request and answer with a job whose batches
carry each item's result under its ``_clientRef`` (developer.kustomer.com/docs/guides/bulk-operations,
/api/core-resources/get-bulk-operation-batches). What the sandbox received (its journal) and holds
(its state) is what these tests check.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk.writers.kustomer_jobs import JOBS_PER_UNIT
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator, KustomerBulkUpdateKObjectsOperator
from airflow_provider_crm.sandbox import DropAfterStore, Sandbox
from airflow_provider_crm.sandbox.journal import JournalEntry
from tests.conftest import use_connection
from tests.helpers import read_jsonl, task_states, xcom_values

KLASS = "orders"
BULK = f"/v1/klasses/{KLASS}/bulk"
SINGLE = f"/v1/klasses/{KLASS}"
FAST = {"poll_interval": 0.05, "rate_limit": 0}
"""Poll soon (the sandbox's jobs take 0.2 s) and send without a limiter, so the tests stay quick."""

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import OPERATOR

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    OPERATOR(task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, poll_interval=0.05, rate_limit=0)
"""


def dag(operator: str, records: list[dict[str, Any]], ledger: Path) -> str:
    return DAG.replace("OPERATOR", operator).replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger)))


def creates(count: int, *, external_ids: bool = True) -> list[dict[str, Any]]:
    records = [{"title": f"Order {n}", "custom": {"orderNumberNum": n}} for n in range(count)]
    return [{**record, "external_id": f"order-{n}"} for n, record in enumerate(records)] if external_ids else records


def bulk_submits(sandbox: Sandbox, method: str = "POST") -> list[JournalEntry]:
    return [entry for entry in sandbox.writes("kustomer") if entry.method == method and entry.path == BULK]


def sent_per_external_id(sandbox: Sandbox) -> Counter[str]:
    """How many times the client sent each external id in a bulk create."""
    return Counter(item["externalId"] for entry in bulk_submits(sandbox) for item in entry.body)


def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (checked every 20 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stored_by_external_id(sandbox: Sandbox) -> dict[str, str]:
    kobjects = sandbox.state("kustomer").kobjects(KLASS)
    assert len({o["externalId"] for o in kobjects}) == len(kobjects), "no external id held twice"
    return {o["externalId"]: o["id"] for o in kobjects}


def test_250_creates_go_through_bulk_jobs_in_airflow(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(dag("KustomerBulkCreateKObjectsOperator", creates(250), ledger))

    assert task_states(run) == {"sync": "success"}
    submits = bulk_submits(sandbox)
    assert sorted(len(entry.body) for entry in submits) == [50, 100, 100], "at most 100 items per request"
    assert all(entry.status == 201 for entry in submits)
    assert [e for e in sandbox.writes("kustomer") if e.path == SINGLE] == [], "no per-record POST"
    assert sent_per_external_id(sandbox) == Counter(f"order-{n}" for n in range(250)), "each record sent once"
    items = [item for entry in submits for item in entry.body]
    assert all(item["_clientRef"] == item["externalId"] for item in items), "the ledger key travels as _clientRef"
    stored = stored_by_external_id(sandbox)
    assert len(stored) == 250
    lines = read_jsonl(ledger)
    assert sorted(line["index"] for line in lines) == list(range(250)), "one ledger line per record"
    assert {line["key"]: line["remote_id"] for line in lines} == stored, "each line carries the new id"
    assert {(line["action"], line["status"]) for line in lines} == {("created", "ok")}
    summary = xcom_values(run)["sync"]
    assert (summary["total"], summary["created"], summary["rejected"]) == (250, 250, 0)
    polls = [e for e in sandbox.journal("kustomer") if e.method == "GET" and e.path.startswith("/v1/bulk/")]
    assert {e.path.rsplit("/", 1)[-1] for e in polls} >= {"batches"}, "results were read from the job's batches"


def test_250_updates_go_through_bulk_put_jobs(sandbox: Sandbox, kustomer_conn: str, tmp_path: Path) -> None:
    ids = [sandbox.kustomer.seed(KLASS, {"title": f"Order {n}"})["id"] for n in range(250)]
    records = [{"id": kobject_id, "custom": {"syncNum": n}} for n, kobject_id in enumerate(ids)]
    ledger = tmp_path / "ledger.jsonl"

    summary = KustomerBulkUpdateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=records, ledger_path=str(ledger), **FAST
    ).execute({})

    assert (summary["total"], summary["updated"]) == (250, 250)
    submits = bulk_submits(sandbox, "PUT")
    assert sorted(len(entry.body) for entry in submits) == [50, 100, 100]
    assert Counter(item["id"] for entry in submits for item in entry.body) == Counter(ids), "each record sent once"
    assert [e for e in sandbox.writes("kustomer") if e.path != BULK] == [], "no per-record PUT"
    state = sandbox.state("kustomer")
    assert all(state.get(KLASS, kobject_id)["custom"] == {"syncNum": n} for n, kobject_id in enumerate(ids))
    assert {line["key"]: line["remote_id"] for line in read_jsonl(ledger)} == {i: i for i in ids}


def test_customer_scoped_creates_carry_the_customer_in_each_item(sandbox: Sandbox, kustomer_conn: str) -> None:
    customer = "5b3bddb67f8469003df370ff"
    records = [{**record, "customer_id": customer} for record in creates(3)]

    KustomerBulkCreateKObjectsOperator(task_id="t", klass_name=KLASS, records=records, **FAST).execute({})

    [submit] = bulk_submits(sandbox)
    assert [item["customer"] for item in submit.body] == [customer] * 3


def test_items_kustomer_refuses_are_rejected_with_its_message(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    ids = [sandbox.kustomer.seed(KLASS, {"title": f"Order {n}"}, rev=2)["id"] for n in range(3)]
    missing = "f" * 24
    records = [
        {"id": ids[0], "title": "Fine"},
        {"id": missing, "title": "Gone"},
        {"id": ids[2], "title": "Stale", "rev": 0},
    ]
    ledger, dead = tmp_path / "ledger.jsonl", tmp_path / "dead.jsonl"

    summary = KustomerBulkUpdateKObjectsOperator(
        task_id="t",
        klass_name=KLASS,
        records=records,
        ledger_path=str(ledger),
        dead_letter_path=str(dead),
        on_record_error="skip",
        max_reject_ratio=1.0,
        **FAST,
    ).execute({})

    assert (summary["updated"], summary["rejected"]) == (1, 2)
    lines = {line["key"]: line for line in read_jsonl(ledger)}
    assert (lines[ids[0]]["action"], lines[ids[0]]["remote_id"]) == ("updated", ids[0])
    assert (lines[missing]["action"], lines[missing]["status"], lines[missing]["error_code"]) == (
        "rejected",
        "error",
        "not_found",
    )
    assert lines[missing]["error_message"] == f"KObject {missing!r} not found in klass {KLASS!r}", "Kustomer's words"
    assert lines[ids[2]]["error_code"] == "conflict" and "rev 0 is stale" in lines[ids[2]]["error_message"]
    assert sorted(line["id"] for line in read_jsonl(dead)) == sorted([missing, ids[2]])
    assert sandbox.state("kustomer").get(KLASS, ids[2])["title"] == "Order 2", "the stale update was not applied"


def test_a_create_whose_external_id_exists_is_unchanged_with_the_stored_id(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    existing = sandbox.kustomer.seed(KLASS, {"title": "Already there", "externalId": "order-1"})["id"]
    ledger = tmp_path / "ledger.jsonl"

    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(3), ledger_path=str(ledger), **FAST
    ).execute({})

    assert (summary["created"], summary["unchanged"]) == (2, 1)
    lines = {line["key"]: line for line in read_jsonl(ledger)}
    assert (lines["order-1"]["action"], lines["order-1"]["remote_id"]) == ("unchanged", existing)
    assert len(stored_by_external_id(sandbox)) == 3


def test_a_unit_over_the_body_cap_is_split(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 4000
    connection = sandbox.airflow_connection("kustomer") | {"extra": {"bulk_max_body_bytes": cap}}
    use_connection(monkeypatch, "kustomer_default", connection)
    sandbox.kustomer.configure({"bulk_max_body_bytes": cap})
    records = [{**record, "description": "x" * 300} for record in creates(60)]

    summary = KustomerBulkCreateKObjectsOperator(task_id="t", klass_name=KLASS, records=records, **FAST).execute({})

    assert summary["created"] == 60
    submits = bulk_submits(sandbox)
    assert len(submits) > 60 * 300 // cap, "split into requests under the cap"
    assert all(len(json.dumps(entry.body)) <= cap and entry.status == 201 for entry in submits), "never a 413"
    assert sent_per_external_id(sandbox) == Counter(f"order-{n}" for n in range(60))
    assert len(stored_by_external_id(sandbox)) == 60


def test_a_lower_cap_at_kustomer_splits_the_unit_on_its_413(sandbox: Sandbox, kustomer_conn: str) -> None:
    sandbox.kustomer.configure({"bulk_max_body_bytes": 3000})

    summary = KustomerBulkCreateKObjectsOperator(task_id="t", klass_name=KLASS, records=creates(40), **FAST).execute({})

    assert summary["created"] == 40
    statuses = Counter(entry.status for entry in bulk_submits(sandbox))
    assert statuses[413] >= 1 and statuses[201] >= 2, statuses
    assert len(stored_by_external_id(sandbox)) == 40


def test_per_record_mode_sends_one_request_per_record(sandbox: Sandbox, kustomer_conn: str) -> None:
    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(5), mode="per_record", rate_limit=0
    ).execute({})

    assert summary["created"] == 5
    assert [entry.path for entry in sandbox.writes("kustomer")] == [SINGLE] * 5


def test_a_bad_mode_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="mode must be one of bulk_job, per_record"):
        KustomerBulkCreateKObjectsOperator(task_id="t", klass_name=KLASS, mode="batch")


# -- A submit whose answer is lost -----------------------------------------------------------------


@pytest.mark.parametrize("job_queued_at_lookup", [False, True], ids=["job-done-before-lookup", "job-still-queued"])
def test_a_lost_create_submit_ends_with_every_record_written_once(
    run_dag: Any,
    sandbox: Sandbox,
    kustomer_conn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    job_queued_at_lookup: bool,
) -> None:
    """The connection drops after Kustomer stored the job. Done before the lookup: nothing is sent again.
    Still queued: what the lookup did not find is sent again, and Kustomer refuses the second copy of each
    external id, which the lookup settles as the stored object."""
    if job_queued_at_lookup:
        monkeypatch.setattr(sandbox.kustomer, "monotonic_clock", frozen_until_second_submit(sandbox))
    else:
        sandbox.kustomer.configure({"bulk_processing_seconds": 0})
    sandbox.inject("kustomer", DropAfterStore(method="POST", path_pattern="/bulk$"))
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag("KustomerBulkCreateKObjectsOperator", creates(100), ledger))

    assert task_states(run) == {"sync": "success"}
    stored = stored_by_external_id(sandbox)
    assert len(stored) == 100, "each record held exactly once"
    expected = Counter(f"order-{n}" for n in range(100))
    assert sent_per_external_id(sandbox) == (expected + expected if job_queued_at_lookup else expected)
    lines = read_jsonl(ledger)
    assert len(lines) == 100 and {line["key"]: line["remote_id"] for line in lines} == stored
    assert {line["action"] for line in lines} == {"unchanged" if job_queued_at_lookup else "created"}


def frozen_until_second_submit(sandbox: Sandbox) -> Any:
    """A job clock that stands still (jobs stay queued) until a second bulk submit arrives, then jumps a minute."""
    start = 1000.0

    def clock() -> float:
        return start + (60.0 if len(bulk_submits(sandbox)) >= 2 else 0.0)

    return clock


def test_a_lost_create_submit_without_external_ids_is_unknown_and_fails_the_task(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    sandbox.inject("kustomer", DropAfterStore(method="POST", path_pattern="/bulk$"))
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag("KustomerBulkCreateKObjectsOperator", creates(30, external_ids=False), ledger))

    assert task_states(run) == {"sync": "failed"}
    assert len(bulk_submits(sandbox)) == 1, "never sent again"
    assert eventually(lambda: sandbox.state("kustomer").count() == 30), "the lost job wrote them, once"
    lines = read_jsonl(ledger)
    assert len(lines) == 30 and {(line["action"], line["status"]) for line in lines} == {("unknown", "unknown")}
    assert all("no external_id" in line["error_message"] for line in lines)


def test_the_unknown_records_fail_the_task_saying_so(sandbox: Sandbox, kustomer_conn: str) -> None:
    from airflow_provider_crm.errors import CrmOutcomeUnknownError

    sandbox.inject("kustomer", DropAfterStore(method="POST", path_pattern="/bulk$"))
    operator = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(3, external_ids=False), **FAST
    )
    with pytest.raises(CrmOutcomeUnknownError, match=r"3 record\(s\) without external_id may or may not"):
        operator.execute({})


def test_a_lost_update_submit_is_sent_again_and_a_rev_refused_as_stale_is_settled_by_reading(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    """PUT of the same values is idempotent; with ``rev`` the second job meets a moved revision, and a
    read showing ``rev + 1`` with the values sent settles it as updated."""
    ids = [sandbox.kustomer.seed(KLASS, {"title": f"Order {n}"})["id"] for n in range(4)]
    records = [
        {"id": ids[0], "custom": {"syncNum": 0}},
        {"id": ids[1], "custom": {"syncNum": 1}},
        {"id": ids[2], "custom": {"syncNum": 2}, "rev": 0},
        {"id": ids[3], "custom": {"syncNum": 3}, "rev": 0},
    ]
    sandbox.inject("kustomer", DropAfterStore(method="PUT", path_pattern="/bulk$"))
    ledger = tmp_path / "ledger.jsonl"

    summary = KustomerBulkUpdateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=records, ledger_path=str(ledger), **FAST
    ).execute({})

    assert (summary["updated"], summary["rejected"]) == (4, 0)
    assert len(bulk_submits(sandbox, "PUT")) == 2, "the lost job, then the same items once more"
    state = sandbox.state("kustomer")
    assert [state.get(KLASS, i)["custom"] for i in ids] == [{"syncNum": n} for n in range(4)]
    assert [state.get(KLASS, i)["rev"] for i in ids[2:]] == [1, 1], "the rev updates were applied once"
    assert {line["key"]: line["action"] for line in read_jsonl(ledger)} == dict.fromkeys(ids, "updated")


def test_a_job_not_complete_by_the_timeout_leaves_its_records_owed(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    """Past ``job_timeout`` the records are looked up; not there yet, they are owed (a task retry sends
    them again, and a create meeting its own external id is then settled as unchanged)."""
    from airflow_provider_crm.bulk.policy import BulkRejectedError

    sandbox.kustomer.configure({"bulk_processing_seconds": 600})
    ledger = tmp_path / "ledger.jsonl"
    operator = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(3), ledger_path=str(ledger), job_timeout=2.0, **FAST
    )

    with pytest.raises(BulkRejectedError, match="every record was rejected") as caught:
        operator.execute({})

    assert caught.value.retryable and caught.value.retry_later == 3
    assert len(bulk_submits(sandbox)) == 1
    polls = [e for e in sandbox.journal("kustomer") if e.method == "GET" and e.path.startswith("/v1/bulk/")]
    assert len(polls) >= 2, "polled until the timeout"
    lines = read_jsonl(ledger)
    assert {(line["status"], line["error_code"]) for line in lines} == {("retry", "not_written")}
    assert all("does not hold it" in line["error_message"] for line in lines)


# -- How many requests a job costs ------------------------------------------------------------------


def requests_per_job(sandbox: Sandbox) -> list[int]:
    """Requests each job cost, in submit order: its submit, and every read of ``/v1/bulk/{id}[/batches]``."""
    job_ids = [entry.response_body["data"]["id"] for entry in bulk_submits(sandbox) if entry.status == 201]
    reads = Counter(
        entry.segments[2]
        for entry in sandbox.journal("kustomer")
        if entry.method == "GET" and entry.segments[:2] == ("v1", "bulk")
    )
    assert set(reads) == set(job_ids), "only submitted jobs were read"
    return [1 + reads[job_id] for job_id in job_ids]


def test_once_a_run_knows_how_long_jobs_take_a_job_costs_its_submit_and_one_read(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    """Kustomer counts polls against the org's per-minute budget: the worker reads a job's batches, which
    show it done and hold its results in one answer, first when this run's earlier jobs were done."""
    sandbox.kustomer.configure({"bulk_processing_seconds": 0.3})
    ledger = tmp_path / "ledger.jsonl"
    units = 6

    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t",
        klass_name=KLASS,
        records=creates(units * JOBS_PER_UNIT * 100),
        ledger_path=str(ledger),
        max_workers=1,
        **FAST,
    ).execute({})

    assert summary["total"] == summary["created"] == units * JOBS_PER_UNIT * 100
    stored = stored_by_external_id(sandbox)
    assert {line["key"]: line["remote_id"] for line in read_jsonl(ledger)} == stored, "each record settled, with its id"
    costs = requests_per_job(sandbox)
    assert len(costs) == units * JOBS_PER_UNIT
    # The worker submits a unit of jobs, then waits for its first: that job is the one the estimate
    # times (the others are done by the time it is). The first unit's leader teaches the estimate; the
    # later leaders cost their submit and one read. Without the estimate each costs about eight at this
    # poll interval. A loaded sandbox may finish one late (a few reads more): most, not all, are asked.
    leaders = costs[JOBS_PER_UNIT::JOBS_PER_UNIT]
    assert sum(cost == 2 for cost in leaders) >= 3, f"requests per unit-leading job after the first: {costs}"
    statuses = [e for e in sandbox.journal("kustomer") if e.method == "GET" and len(e.segments) == 3]
    assert statuses == [], "no status poll: the batches answered"


def test_a_read_while_batches_are_pending_waits_for_them(sandbox: Sandbox, kustomer_conn: str, tmp_path: Path) -> None:
    # The first read is due at 0.05 s and the last batch completes at 3 s: room for a loaded machine.
    sandbox.kustomer.configure({"bulk_processing_seconds": 3.0, "bulk_batch_size": 10})
    ledger = tmp_path / "ledger.jsonl"

    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(30), ledger_path=str(ledger), **FAST
    ).execute({})

    assert summary["created"] == 30
    reads = [e for e in sandbox.journal("kustomer") if e.method == "GET" and e.segments[-1:] == ("batches",)]
    answers = [[b["attributes"]["status"] for b in read.response_body["data"]] for read in reads]
    assert len(answers[0]) == 3 and answers[0] != ["complete"] * 3, "the first read came while batches were pending"
    assert answers[-1] == ["complete"] * 3 and all(a != ["complete"] * 3 for a in answers[:-1]), "read until done"
    assert {line["key"]: line["remote_id"] for line in read_jsonl(ledger)} == stored_by_external_id(sandbox)


def test_batches_listing_fewer_items_than_sent_are_not_taken_as_done(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kustomer does not say whether every batch is listed from the start: a list of complete batches
    short of the items sent sends the worker to the job's status, and the results are read once it is
    complete."""
    from airflow_provider_crm.hooks.kustomer import KustomerHook

    sandbox.kustomer.configure({"bulk_processing_seconds": 6.0, "bulk_batch_size": 10})  # batches at 3, 4.5, 6 s
    listed = KustomerHook.get_bulk_results

    def only_complete_batches(hook: KustomerHook, job_id: str) -> Any:  # as if the rest were not created yet
        return [batch for batch in listed(hook, job_id) if batch.status == "complete"]

    monkeypatch.setattr(KustomerHook, "get_bulk_results", only_complete_batches)
    ledger = tmp_path / "ledger.jsonl"

    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(30), ledger_path=str(ledger), poll_interval=3.2, rate_limit=0
    ).execute({})

    assert summary["created"] == 30
    reads = [e for e in sandbox.journal("kustomer") if e.method == "GET" and e.segments[:2] == ("v1", "bulk")]
    first = [b["attributes"]["status"] for b in reads[0].response_body["data"]]
    assert first.count("complete") in (1, 2), f"the first read listed some batches complete, not all: {first}"
    assert [len(e.segments) for e in reads[1:]].count(3) >= 1, "then the job's status was asked"
    assert reads[-1].segments[-1] == "batches", "and its results read once it was complete"
    assert {line["key"]: line["remote_id"] for line in read_jsonl(ledger)} == stored_by_external_id(sandbox)
