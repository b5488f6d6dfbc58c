"""HubSpot bulk writes: one bad value or a repeated order never costs the other records of a batch,
and no record HubSpot applied is ever rejected or dead-lettered.

Every test checks the outcome twice: in the sandbox (what HubSpot holds, what it was sent) and in
the ledger and dead letter (what we say happened), and counts the records where the two disagree.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk.policy import BulkRejectedError
from airflow_provider_crm.errors import CrmRateLimitError
from airflow_provider_crm.models.hubspot import BatchIncompleteError, value_held
from airflow_provider_crm.operators.bulk import HubSpotBulkUpdateOrdersOperator, HubSpotBulkUpsertOrdersOperator
from airflow_provider_crm.sandbox import Chaos, DropAfterStore, Sandbox, ServerError
from airflow_provider_crm.sandbox.chaos import CHAOS_KINDS
from tests.conftest import use_connection
from tests.helpers import hubspot_app, hubspot_app_answering, read_jsonl, task_states, xcom_values

UPDATE = "/crm/v3/objects/orders/batch/update"
READ = "/crm/v3/objects/orders/batch/read"


def holds(sandbox: Sandbox, record: dict[str, Any]) -> bool:
    """Whether HubSpot holds every value the record sent (numbers as HubSpot strings)."""
    stored = sandbox.state("hubspot").get(record["id"])
    if stored is None:
        return False
    return all(value_held(str(value), stored["properties"].get(name)) for name, value in record["properties"].items())


def disagreements(sandbox: Sandbox, records: list[dict[str, Any]], ledger: list[dict[str, Any]]) -> dict[str, list]:
    """Ledger lines that contradict the sandbox: rejected yet applied, or updated yet not held.

    Only the last record of each order can be checked against the final state.
    """
    last = {record["id"]: index for index, record in enumerate(records)}
    wrong: dict[str, list] = {"rejected_but_applied": [], "updated_but_not_held": []}
    for line in ledger:
        record = records[line["index"]]
        if last[record["id"]] != line["index"]:
            continue
        if line["action"] == "rejected" and holds(sandbox, record):
            wrong["rejected_but_applied"].append(line["index"])
        if line["action"] in ("updated", "created") and not holds(sandbox, record):
            wrong["updated_but_not_held"].append(line["index"])
    return wrong


def update_requests(sandbox: Sandbox) -> list[Any]:
    return [e for e in sandbox.writes("hubspot") if e.path == UPDATE]


def update_operator(
    records: list[dict[str, Any]], ledger_path: Path, **options: Any
) -> HubSpotBulkUpdateOrdersOperator:
    """The bulk update over ``records``, run in-process, writing its ledger to ``ledger_path``."""
    return HubSpotBulkUpdateOrdersOperator(task_id="t", records=records, ledger_path=str(ledger_path), **options)


# -- the run in Airflow -------------------------------------------------------------------------

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import HubSpotBulkUpdateOrdersOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    HubSpotBulkUpdateOrdersOperator(
        task_id="sync",
        records=RECORDS,
        batch_size=20,
        max_workers=4,
        on_record_error="warn",
        max_reject_ratio=0.5,
        ledger_path=LEDGER,
        dead_letter_path=DEAD,
    )
"""


def test_one_bad_value_and_repeated_orders_cost_only_the_bad_record(
    run_dag: Any, sandbox: Sandbox, hubspot_conn: str, tmp_path: Path
) -> None:
    app = hubspot_app(sandbox)
    ids = [app.seed({"hs_order_name": f"o{i}"}) for i in range(60)]
    records: list[dict[str, Any]] = [
        {"id": order_id, "properties": {"hs_total_price": i, "hs_order_name": f"v1-{i}"}}
        for i, order_id in enumerate(ids)
    ]
    records[5]["properties"]["hs_total_price"] = "n/a"  # a number property: HubSpot refuses the batch
    records.insert(12, {"id": ids[7], "properties": {"hs_order_name": "v2-7"}})  # same batch of 20 as #7
    records.insert(45, {"id": ids[9], "properties": {"hs_order_name": "v2-9"}})  # a later batch than #9
    records.append({"id": ids[9], "properties": {"hs_order_name": "v3-9"}})  # and a later one still
    ledger_path, dead_path = tmp_path / "ledger.jsonl", tmp_path / "dead.jsonl"
    source = DAG.replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger_path)))
    run = run_dag(source.replace("DEAD", repr(str(dead_path))))

    assert task_states(run) == {"sync": "success"}
    summary = xcom_values(run)["sync"]
    assert isinstance(summary, dict)
    assert (summary["total"], summary["updated"], summary["rejected"]) == (63, 62, 1)

    # What HubSpot holds: every order but the bad one written, each repeated order with its last value.
    orders = {order_id: sandbox.state("hubspot").get(order_id)["properties"] for order_id in ids}
    assert "hs_total_price" not in orders[ids[5]] and orders[ids[5]]["hs_order_name"] == "o5"
    assert all(orders[ids[i]]["hs_total_price"] == str(i) for i in range(60) if i != 5)
    assert (orders[ids[7]]["hs_order_name"], orders[ids[9]]["hs_order_name"]) == ("v2-7", "v3-9")
    assert all(orders[ids[i]]["hs_order_name"] == f"v1-{i}" for i in range(60) if i not in (5, 7, 9))

    # What HubSpot was sent: no request names an order twice; the repeats arrived in input order.
    requests = update_requests(sandbox)
    assert all(len({i["id"] for i in e.body["inputs"]}) == len(e.body["inputs"]) for e in requests)
    applied = [i for e in requests if e.status in (200, 207) for i in e.body["inputs"]]
    assert [i["properties"]["hs_order_name"] for i in applied if i["id"] == ids[9]] == ["v1-9", "v2-9", "v3-9"]
    assert [i["properties"]["hs_order_name"] for i in applied if i["id"] == ids[7]] == ["v1-7", "v2-7"]
    assert sorted(i["id"] for i in applied) == sorted([*[ids[i] for i in range(60) if i != 5], ids[7], ids[9], ids[9]])
    refused_whole = [e for e in requests if e.status == 400]
    assert refused_whole and all(ids[5] in {i["id"] for i in e.body["inputs"]} for e in refused_whole)
    assert len(requests) <= 4 + 2 * 5, "one request per batch, plus the halvings around the bad value"

    # What we say happened: exactly the bad record rejected and dead-lettered, nothing contradicting HubSpot.
    ledger = read_jsonl(ledger_path)
    assert sorted(line["index"] for line in ledger) == list(range(63))
    assert [(line["index"], line["error_code"]) for line in ledger if line["action"] == "rejected"] == [
        (5, "VALIDATION_ERROR")
    ]
    assert [line["id"] for line in read_jsonl(dead_path)] == [ids[5]]
    assert disagreements(sandbox, records, ledger) == {"rejected_but_applied": [], "updated_but_not_held": []}


# -- every 207 form -----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["grouped", "trace_id", "bare", "silent"])
def test_nothing_applied_is_ever_rejected_whatever_the_207_looks_like(
    sandbox: Sandbox, hubspot_conn: str, tmp_path: Path, style: str
) -> None:
    app = hubspot_app_answering(sandbox, style)
    ids = [app.seed({"hs_order_name": f"o{i}"}) for i in range(40)]
    app.seed({"kustomer_kobject_id": "taken"})
    records: list[dict[str, Any]] = [{"id": i, "properties": {"hs_fulfillment_status": "packed"}} for i in ids]
    records[3] = {"id": "909090", "properties": {"hs_fulfillment_status": "packed"}}  # no such order
    records[17] = {"id": ids[17], "properties": {"kustomer_kobject_id": "taken"}}  # value held by another
    records[30] = {"id": ids[30], "properties": {"hs_is_gift": "maybe"}}  # invalid: refused whole
    ledger_path, dead_path = tmp_path / "ledger.jsonl", tmp_path / "dead.jsonl"
    summary = update_operator(
        records,
        ledger_path,
        batch_size=20,
        on_record_error="warn",
        max_reject_ratio=0.5,
        dead_letter_path=str(dead_path),
    ).execute({})
    ledger = read_jsonl(ledger_path)
    assert sorted(line["index"] for line in ledger if line["action"] == "rejected") == [3, 17, 30]
    assert (summary["updated"], summary["rejected"]) == (37, 3)
    assert sorted(line["id"] for line in read_jsonl(dead_path)) == sorted(["909090", ids[17], ids[30]])
    assert disagreements(sandbox, records, ledger) == {"rejected_but_applied": [], "updated_but_not_held": []}
    reads = [e for e in sandbox.writes("hubspot") if e.path == READ]
    assert bool(reads) is (style in ("bare", "silent")), "orders are read back only when the answer is silent"


# -- a request that fails outright --------------------------------------------------------------


def _few_attempts(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    conn: dict[str, object] = {
        **sandbox.airflow_connection("hubspot"),
        "extra": {"max_attempts": 2, "read_timeout": 10},
    }
    use_connection(monkeypatch, "hubspot_default", conn)


def test_a_batch_applied_but_never_answered_is_read_back_as_written(
    sandbox: Sandbox, hubspot_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _few_attempts(sandbox, monkeypatch)
    ids = [hubspot_app(sandbox).seed({"hs_order_name": f"o{i}"}) for i in range(10)]
    sandbox.inject("hubspot", DropAfterStore(count=2, path_pattern="/batch/update$"))
    records = [{"id": i, "properties": {"hs_order_name": f"n{n}"}} for n, i in enumerate(ids)]
    ledger_path = tmp_path / "ledger.jsonl"
    summary = update_operator(records, ledger_path).execute({})
    assert (summary["updated"], summary["rejected"]) == (10, 0)
    assert [e.status for e in update_requests(sandbox)] == [None, None], "stored twice, answered never"
    assert [len(e.body["inputs"]) for e in sandbox.writes("hubspot") if e.path == READ] == [10]
    assert disagreements(sandbox, records, read_jsonl(ledger_path)) == {
        "rejected_but_applied": [],
        "updated_but_not_held": [],
    }


def test_a_batch_hubspot_failed_on_is_rejected_after_reading_back(
    sandbox: Sandbox, hubspot_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _few_attempts(sandbox, monkeypatch)
    ids = [hubspot_app(sandbox).seed({"hs_order_name": f"o{i}"}) for i in range(10)]
    sandbox.inject("hubspot", ServerError(status=500, count=2, path_pattern="/batch/update$"))
    records: list[dict[str, Any]] = [{"id": i, "properties": {"hs_order_name": f"n{n}"}} for n, i in enumerate(ids)]
    records[4]["properties"]["hs_order_name"] = "o4"  # HubSpot already holds it: nothing to redo
    ledger_path, dead_path = tmp_path / "ledger.jsonl", tmp_path / "dead.jsonl"
    with pytest.raises(BulkRejectedError) as caught:  # records owed after a server error fail the task
        update_operator(
            records, ledger_path, on_record_error="skip", max_reject_ratio=1.0, dead_letter_path=str(dead_path)
        ).execute({})
    assert (caught.value.rejected, caught.value.retry_later, caught.value.retryable) == (9, 9, True)
    ledger = read_jsonl(ledger_path)
    assert Counter(line["action"] for line in ledger) == {"updated": 1, "rejected": 9}
    assert {line["error_code"] for line in ledger if line["action"] == "rejected"} == {"INTERNAL_ERROR"}
    assert all("read back" in line["error_message"] for line in ledger if line["action"] == "rejected")
    assert len(read_jsonl(dead_path)) == 9
    assert disagreements(sandbox, records, ledger) == {"rejected_but_applied": [], "updated_but_not_held": []}


def test_a_spent_daily_limit_mid_batch_stops_the_run_and_says_what_was_written(
    sandbox: Sandbox, hubspot_conn: str, tmp_path: Path
) -> None:
    app = hubspot_app(sandbox)
    ids = [app.seed({"hs_order_name": f"o{i}"}) for i in range(20)]
    records: list[dict[str, Any]] = [{"id": i, "properties": {"hs_total_price": n}} for n, i in enumerate(ids)]
    records[15]["properties"]["hs_total_price"] = "n/a"
    # Requests: all 20 (400), 0-9 (200), 10-19 (400), then the daily limit is spent.
    app.configure({"daily_limit": 3})
    ledger_path = tmp_path / "ledger.jsonl"
    operator = update_operator(records, ledger_path)
    with pytest.raises(BatchIncompleteError, match=r"10 input\(s\) written") as caught:
        operator.execute({})
    assert isinstance(caught.value.cause, CrmRateLimitError) and caught.value.cause.code == "DAILY"
    written = [n for n, i in enumerate(ids) if "hs_total_price" in sandbox.state("hubspot").get(i)["properties"]]
    assert written == list(range(10))
    assert not any(line["action"] == "rejected" for line in read_jsonl(ledger_path)), "nothing refused unseen"


def test_under_chaos_every_record_is_told_as_hubspot_holds_it(
    sandbox: Sandbox, hubspot_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two attempts per request and a third of batch writes faulted (applied or not, answered or
    # not): many requests end in an error, and their records are settled by reading back.
    _few_attempts(sandbox, monkeypatch)
    app = hubspot_app(sandbox)
    app.configure({"batch_errors": "bare"})
    ids = [app.seed({"hs_order_name": f"o{i}"}) for i in range(200)]
    records: list[dict[str, Any]] = [{"id": i, "properties": {"hs_total_price": n}} for n, i in enumerate(ids)]
    for n in range(7, 200, 37):
        records[n]["properties"]["hs_total_price"] = "n/a"
    for n in range(11, 200, 41):
        records[n]["id"] = f"9{n:05d}"  # no such order
    mix = {kind: 1.0 for kind in CHAOS_KINDS if kind != "slow"}
    sandbox.chaos("hubspot", Chaos(seed=11, rate=0.35, mix=mix, path_pattern="/batch/update$"))
    ledger_path = tmp_path / "ledger.jsonl"
    operator = update_operator(records, ledger_path, batch_size=10, on_record_error="skip", max_reject_ratio=1.0)
    try:
        operator.execute({})
    except BulkRejectedError as exc:  # records refused for a reason that can pass fail the task, to be retried
        assert exc.retry_later > 0
    faults = dict(sandbox.chaos_stats("hubspot"))
    sandbox.chaos("hubspot", None)
    # Seeded, but how many requests (and so faults) a run makes depends on timing: bound with headroom.
    assert sum(faults.values()) >= 10, faults
    ledger = read_jsonl(ledger_path)
    assert sorted(line["index"] for line in ledger) == list(range(200)), "every record accounted for"
    assert disagreements(sandbox, records, ledger) == {"rejected_but_applied": [], "updated_but_not_held": []}
    bad = set(range(7, 200, 37)) | set(range(11, 200, 41))
    assert bad <= {line["index"] for line in ledger if line["action"] == "rejected"}
    settled_by_reading = [line for line in ledger if "(read back)" in (line["error_message"] or "")]
    assert len(settled_by_reading) >= 5, "requests that failed outright were settled by reading back"


# -- dry runs -----------------------------------------------------------------------------------


def test_dry_run_upsert_reads_a_hundred_orders_per_request(sandbox: Sandbox, hubspot_conn: str) -> None:
    app = hubspot_app(sandbox)
    for n in range(0, 250, 2):
        app.seed({"hs_external_order_id": f"ext-{n}"})
    records = [{"id": f"ext-{n}", "properties": {"hs_order_name": f"Order {n}"}} for n in range(250)]
    report = HubSpotBulkUpsertOrdersOperator(
        task_id="t", records=records, id_property="hs_external_order_id", dry_run=True
    ).execute({})
    assert (report["would_update"], report["would_create"], report["invalid"]) == (125, 125, 0)
    journal = sandbox.journal("hubspot")
    assert {(e.method, e.path) for e in journal} == {("POST", READ)}, "no write, no read per record"
    assert sorted(len(e.body["inputs"]) for e in journal) == [50, 100, 100]
    assert all(e.body["idProperty"] == "hs_external_order_id" for e in journal)
    assert app.state.count() == 125
