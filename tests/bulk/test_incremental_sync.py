"""Incremental sync in real Airflow runs: only records that changed since their last confirmed write are sent.

What counts is what the client sent (the sandbox's journal), not only what the vendor ended up holding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk import sync_file
from airflow_provider_crm.sandbox import Sandbox
from tests.bulk.test_kustomer_bulk_job_upsert import bulk_updates, lookups, single_writes
from tests.bulk.test_kustomer_bulk_jobs import BULK, stored_by_external_id
from tests.conftest import REPO
from tests.helpers import hubspot_app, read_jsonl, task_states, xcom_values

UPDATE = "/crm/v3/objects/orders/batch/update"

HUBSPOT_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import HubSpotBulkUpdateOrdersOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    HubSpotBulkUpdateOrdersOperator(
        task_id="sync",
        source=SOURCE,
        ledger_path=LEDGER,
        skip_unchanged=True,
        state_path=STATE,
        OPTIONS
    )
"""


def hubspot_dag(source: Path, ledger: Path, state: Path, **options: Any) -> str:
    text = HUBSPOT_DAG.replace("SOURCE", repr(str(source))).replace("LEDGER", repr(str(ledger)))
    extra = "".join(f"{name}={value!r}, " for name, value in options.items())
    return text.replace("STATE", repr(str(state))).replace("OPTIONS", extra)


def write_orders(path: Path, ids: list[str], totals: dict[int, Any] | None = None) -> Path:
    """One JSON line per order: ``hs_total_price`` is the order's position unless ``totals`` says otherwise."""
    totals = totals or {}
    lines = [
        json.dumps({"id": order_id, "properties": {"hs_order_name": f"o{n}", "hs_total_price": totals.get(n, n)}})
        for n, order_id in enumerate(ids)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def sent_ids(sandbox: Sandbox, since: int = 0) -> Counter[str]:
    """How many times each order id travelled in a batch update request (any answer)."""
    entries = [e for e in sandbox.writes("hubspot")[since:] if e.path == UPDATE]
    return Counter(item["id"] for e in entries for item in e.body["inputs"])


def test_only_changed_records_are_sent_and_a_failed_one_is_sent_again(
    run_dag: Any, sandbox: Sandbox, hubspot_conn: str, tmp_path: Path
) -> None:
    ids = [hubspot_app(sandbox).seed({"hs_order_name": f"o{n}"}) for n in range(500)]
    state, source = tmp_path / "orders.sync", tmp_path / "orders.jsonl"
    options = {"on_record_error": "warn", "max_reject_ratio": 0.5}

    # Run 1: no store yet, every record is sent.
    write_orders(source, ids)
    first = run_dag(hubspot_dag(source, tmp_path / "l1.jsonl", state, **options))
    assert task_states(first) == {"sync": "success"}
    assert set(sent_ids(sandbox)) == set(ids)
    assert xcom_values(first)["sync"]["full_sync"] is True  # type: ignore[index]

    # Run 2, same input: nothing is sent; the ledger still accounts for every record.
    mark = len(sandbox.writes("hubspot"))
    second = run_dag(hubspot_dag(source, tmp_path / "l2.jsonl", state, **options))
    assert task_states(second) == {"sync": "success"}
    assert sandbox.writes("hubspot")[mark:] == []
    ledger = read_jsonl(tmp_path / "l2.jsonl")
    assert {(line["action"], line["status"]) for line in ledger} == {("unchanged", "skipped")}
    assert {line["key"]: line["remote_id"] for line in ledger} == {order_id: order_id for order_id in ids}
    summary = xcom_values(second)["sync"]
    assert (summary["unchanged"], summary["skipped_unchanged"], summary["full_sync"]) == (500, 500, False)  # type: ignore[index]

    # Run 3, 1% changed, one of them refused by HubSpot (not a number): exactly those five are sent.
    changed = {3: 1003, 100: 1100, 250: "n/a", 377: 1377, 499: 1499}
    write_orders(source, ids, changed)
    mark = len(sandbox.writes("hubspot"))
    third = run_dag(hubspot_dag(source, tmp_path / "l3.jsonl", state, **options))
    assert task_states(third) == {"sync": "success"}
    assert set(sent_ids(sandbox, mark)) == {ids[n] for n in changed}
    actions = Counter(line["action"] for line in read_jsonl(tmp_path / "l3.jsonl"))
    assert actions == Counter({"unchanged": 495, "updated": 4, "rejected": 1})

    # Run 4: another 1% changed, and the refused record back at its run-1 value, which the store
    # held as confirmed before run 3. It is sent all the same: its last write was not confirmed.
    changed = {3: 1003, 100: 1100, 377: 1377, 499: 1499, 10: 1010, 20: 1020, 30: 1030, 40: 1040}
    write_orders(source, ids, changed)
    mark = len(sandbox.writes("hubspot"))
    fourth = run_dag(hubspot_dag(source, tmp_path / "l4.jsonl", state, **options))
    assert task_states(fourth) == {"sync": "success"}
    assert sent_ids(sandbox, mark) == Counter({ids[n]: 1 for n in (10, 20, 30, 40, 250)})
    held = {order_id: sandbox.state("hubspot").get(order_id)["properties"]["hs_total_price"] for order_id in ids}
    assert held == {order_id: str(changed.get(n, n)) for n, order_id in enumerate(ids)}


def test_a_dry_run_reports_what_would_be_sent_and_leaves_the_store(
    run_dag: Any, sandbox: Sandbox, hubspot_conn: str, tmp_path: Path
) -> None:
    ids = [hubspot_app(sandbox).seed({"hs_order_name": f"o{n}"}) for n in range(200)]
    state, source = tmp_path / "orders.sync", tmp_path / "orders.jsonl"
    assert task_states(run_dag(hubspot_dag(write_orders(source, ids), tmp_path / "l1.jsonl", state))) == {
        "sync": "success"
    }
    before = state.read_bytes()
    write_orders(source, ids, {5: 55, 6: 66})
    mark = len(sandbox.writes("hubspot"))
    preview = run_dag(hubspot_dag(source, tmp_path / "l2.jsonl", state, dry_run=True))
    summary = xcom_values(preview)["sync"]
    assert (summary["would_update"], summary["skipped_unchanged"]) == (2, 198)  # type: ignore[index]
    assert sent_ids(sandbox, mark) == Counter() and state.read_bytes() == before
    reads = [e for e in sandbox.journal("hubspot")[mark:] if e.path.endswith("/batch/read")]
    assert sorted(item["id"] for e in reads for item in e.body["inputs"]) == sorted([ids[5], ids[6]])


def test_a_run_that_stops_half_way_saves_what_it_confirmed(
    run_dag: Any, sandbox: Sandbox, hubspot_conn: str, tmp_path: Path
) -> None:
    ids = [hubspot_app(sandbox).seed({"hs_order_name": f"o{n}"}) for n in range(100)]
    state, source = tmp_path / "orders.sync", tmp_path / "orders.jsonl"
    options = {"batch_size": 10, "max_workers": 1}
    run_dag(hubspot_dag(write_orders(source, ids), tmp_path / "l1.jsonl", state, **options))

    # Every record changes; record 55 is refused and on_record_error="fail" stops the run there.
    write_orders(source, ids, {n: 100 + n if n != 55 else "n/a" for n in range(100)})
    stopped = run_dag(hubspot_dag(source, tmp_path / "l2.jsonl", state, **options))
    assert task_states(stopped) == {"sync": "failed"}
    confirmed = {line["key"] for line in read_jsonl(tmp_path / "l2.jsonl") if line["action"] == "updated"}
    assert 50 <= len(confirmed) < 100

    write_orders(source, ids, {n: 100 + n for n in range(100)})
    mark = len(sandbox.writes("hubspot"))
    rerun = run_dag(hubspot_dag(source, tmp_path / "l3.jsonl", state, **options))
    assert task_states(rerun) == {"sync": "success"}
    assert set(sent_ids(sandbox, mark)) == set(ids) - confirmed


KILLED_RUN = """
import json, os, sys
from airflow_provider_crm.operators.bulk import HubSpotBulkUpdateOrdersOperator
HubSpotBulkUpdateOrdersOperator(
    task_id="sync", source=sys.argv[1], ledger_path=sys.argv[2], skip_unchanged=True, state_path=sys.argv[3],
    batch_size=10, max_workers=1, rate_limit=0.5,
).execute({})
"""


def test_a_killed_run_leaves_a_store_the_next_run_uses(
    run_dag: Any, sandbox: Sandbox, hubspot_conn: str, tmp_path: Path
) -> None:
    ids = [hubspot_app(sandbox).seed({"hs_order_name": f"o{n}"}) for n in range(300)]
    state, source = tmp_path / "orders.sync", tmp_path / "orders.jsonl"
    run_dag(hubspot_dag(write_orders(source, ids), tmp_path / "l1.jsonl", state))
    saved = sync_file.load(str(state))
    assert saved is not None

    changed = {n: 1000 + n for n in range(0, 300, 10)}  # 30 records, three batches of 10, 2 s apart
    write_orders(source, ids, changed)
    mark = len(sandbox.writes("hubspot"))
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(source), str(tmp_path / "killed.jsonl"), str(state)],
        cwd=REPO,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 120
        while not sent_ids(sandbox, mark) and time.monotonic() < deadline:
            assert child.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        assert sent_ids(sandbox, mark), "the run sent nothing within 120 s"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert sync_file.load(str(state)) == saved, "the store is the one the last finished run saved"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".sync-")) == []

    mark = len(sandbox.writes("hubspot"))
    after = run_dag(hubspot_dag(source, tmp_path / "l3.jsonl", state))
    assert task_states(after) == {"sync": "success"}
    assert set(sent_ids(sandbox, mark)) == {ids[n] for n in changed}
    mark = len(sandbox.writes("hubspot"))
    assert task_states(run_dag(hubspot_dag(source, tmp_path / "l4.jsonl", state))) == {"sync": "success"}
    assert sandbox.writes("hubspot")[mark:] == []


KUSTOMER_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkUpsertKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KustomerBulkUpsertKObjectsOperator(
        task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, poll_interval=0.05, rate_limit=0,
        skip_unchanged=True, state_path=STATE, mode=MODE,
    )
"""


def kustomer_dag(records: list[dict[str, Any]], ledger: Path, state: Path, mode: str = "bulk_job") -> str:
    text = KUSTOMER_DAG.replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger)))
    return text.replace("STATE", repr(str(state))).replace("MODE", repr(mode))


def kobjects(count: int, changed: dict[int, int] | None = None) -> list[dict[str, Any]]:
    totals = {n: (changed or {}).get(n, n) for n in range(count)}
    return [{"external_id": f"o-{n}", "title": f"Order {n}", "custom": {"totalNum": totals[n]}} for n in range(count)]


def test_a_kustomer_upsert_updates_known_keys_by_id_without_a_lookup(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    state = tmp_path / "orders.sync"
    first = run_dag(kustomer_dag(kobjects(150), tmp_path / "l1.jsonl", state))
    assert task_states(first) == {"sync": "success"}
    ids = stored_by_external_id(sandbox)
    assert len(ids) == 150

    mark = len(sandbox.journal("kustomer"))
    second = run_dag(kustomer_dag(kobjects(150), tmp_path / "l2.jsonl", state))
    assert task_states(second) == {"sync": "success"}
    assert sandbox.journal("kustomer")[mark:] == [], "nothing sent, nothing read"
    assert {line["key"]: line["remote_id"] for line in read_jsonl(tmp_path / "l2.jsonl")} == ids

    changed = {7: 700, 99: 9900}
    mark = len(sandbox.journal("kustomer"))
    third = run_dag(kustomer_dag(kobjects(152, changed), tmp_path / "l3.jsonl", state))
    assert task_states(third) == {"sync": "success"}
    assert sorted(item["id"] for item in bulk_updates(sandbox, mark)) == sorted([ids["o-7"], ids["o-99"]])
    assert lookups(sandbox, mark) == Counter(), "known keys are updated by the id the store remembers"
    creates = [e for e in sandbox.journal("kustomer")[mark:] if e.method == "POST" and e.path == BULK]
    assert [item["externalId"] for e in creates for item in e.body] == ["o-150", "o-151"]
    assert single_writes(sandbox) == []
    totals = {o["externalId"]: o["custom"]["totalNum"] for o in sandbox.state("kustomer").kobjects("orders")}
    assert totals == {f"o-{n}": changed.get(n, n) for n in range(152)}


def test_a_kustomer_upsert_finds_an_object_the_store_remembers_wrongly(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    """The object was deleted and made again outside the pipeline: its old id is refused, the record is
    then created or found by external id like any other, and the store learns the new id."""
    state = tmp_path / "orders.sync"
    run_dag(kustomer_dag(kobjects(10), tmp_path / "l1.jsonl", state))
    old = stored_by_external_id(sandbox)["o-4"]
    sandbox.state("kustomer").delete("orders", old)
    newer = sandbox.kustomer.seed("orders", {"title": "Order 4", "externalId": "o-4", "custom": {"totalNum": 4}})["id"]

    third = run_dag(kustomer_dag(kobjects(10, {4: 44}), tmp_path / "l2.jsonl", state))
    assert task_states(third) == {"sync": "success"}
    line = next(line for line in read_jsonl(tmp_path / "l2.jsonl") if line["key"] == "o-4")
    assert (line["action"], line["remote_id"]) == ("updated", newer)
    totals = {o["externalId"]: o["custom"]["totalNum"] for o in sandbox.state("kustomer").kobjects("orders")}
    assert totals["o-4"] == 44 and len(totals) == 10


def test_a_per_record_kustomer_upsert_puts_by_the_remembered_id(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    state = tmp_path / "orders.sync"
    run_dag(kustomer_dag(kobjects(20), tmp_path / "l1.jsonl", state, mode="per_record"))
    ids = stored_by_external_id(sandbox)
    sandbox.state("kustomer").delete("orders", ids["o-4"])  # deleted outside the pipeline

    mark = len(sandbox.journal("kustomer"))
    run = run_dag(kustomer_dag(kobjects(20, {3: 33, 4: 44}), tmp_path / "l2.jsonl", state, mode="per_record"))
    assert task_states(run) == {"sync": "success"}
    entries = sandbox.journal("kustomer")[mark:]

    def about(external_id: str) -> list[tuple[str, int | None]]:
        return [
            (e.method, e.status)
            for e in entries
            if e.path.endswith(f"/{ids[external_id]}") or e.segments[-1] == f"externalId={external_id}"
        ]

    assert about("o-3") == [("PUT", 200)], "updated by the remembered id, no lookup"
    assert about("o-4") == [("PUT", 404), ("GET", 404)], "gone: found missing by external id, then created"
    # Records go to several workers: o-3's PUT may come before, between or after o-4's requests.
    [create] = [e for e in entries if e.method == "POST"]
    lookup = next(e for e in entries if e.segments[-1] == "externalId=o-4")
    assert len(entries) == 4 and create.body["externalId"] == "o-4" and create.seq > lookup.seq
    held = {o["externalId"]: (o["id"], o["custom"]["totalNum"]) for o in sandbox.state("kustomer").kobjects("orders")}
    assert held["o-3"] == (ids["o-3"], 33) and held["o-4"][1] == 44 and len(held) == 20


@pytest.mark.parametrize("vendor", ["kaiten", "microbase"])
def test_per_record_vendors_skip_what_they_confirmed(
    vendor: str, run_dag: Any, sandbox: Sandbox, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    request.getfixturevalue(f"{vendor}_conn")
    app: Any = sandbox.app(vendor)
    if vendor == "kaiten":
        for n in range(30):
            app.seed(f"c-{n}", f"C{n}")
        operator, field = "KaitenBulkUpdateCustomersOperator", "slug"
        records = [{"slug": f"c-{n}", "name": f"Customer {n}"} for n in range(30)]
    else:
        for n in range(30):
            app.seed(id=f"c{n}", email=f"c{n}@example.com")
        operator, field = "MicroBaseBulkUpdateCustomersOperator", "id"
        records = [{"id": f"c{n}", "first_name": f"N{n}"} for n in range(30)]
    source = HUBSPOT_DAG.replace("HubSpotBulkUpdateOrdersOperator", operator).replace("source=SOURCE", "records=SOURCE")
    state = tmp_path / "s.sync"

    def run(rows: list[dict[str, Any]], ledger: str) -> list[dict[str, Any]]:
        text = source.replace("SOURCE", repr(rows)).replace("LEDGER", repr(str(tmp_path / ledger)))
        assert task_states(run_dag(text.replace("STATE", repr(str(state))).replace("OPTIONS", ""))) == {
            "sync": "success"
        }
        return read_jsonl(tmp_path / ledger)

    run(records, "l1.jsonl")
    mark = len(sandbox.writes(vendor))
    assert {line["status"] for line in run(records, "l2.jsonl")} == {"skipped"}
    assert sandbox.writes(vendor)[mark:] == []
    records[12] = {**records[12], ("name" if vendor == "kaiten" else "first_name"): "Changed"}
    ledger = run(records, "l3.jsonl")
    assert [line["key"] for line in ledger if line["status"] == "ok"] == [records[12][field]]
    assert len(sandbox.writes(vendor)[mark:]) == 1


def test_a_deferrable_kustomer_run_submits_only_what_changed(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The submit pass (before deferring) and the collecting pass (after) skip the same records."""
    from tests.airflow_versions import DEFERS_TO_THE_TRIGGERER
    from tests.bulk.test_kustomer_bulk_deferrable import TRIGGER_RAN
    from tests.bulk.test_kustomer_bulk_deferrable import dag as deferrable_dag
    from tests.bulk.test_kustomer_bulk_jobs import creates

    sandbox.kustomer.configure({"bulk_processing_seconds": 0.2})
    options = f"deferrable=True, skip_unchanged=True, state_path={str(tmp_path / 'orders.sync')!r}"
    first = run_dag(deferrable_dag(creates(150), tmp_path / "l1.jsonl", deferrable=options))
    assert task_states(first) == {"sync": "success"}
    ids = stored_by_external_id(sandbox)

    records = creates(152)
    records[5]["title"], records[9]["title"] = "renamed 5", "renamed 9"  # a create leaves a held object alone
    mark = len(sandbox.journal("kustomer"))
    caplog.clear()
    second = run_dag(deferrable_dag(records, tmp_path / "l2.jsonl", deferrable=options))
    assert task_states(second) == {"sync": "success"}
    assert caplog.text.count(TRIGGER_RAN) == (1 if DEFERS_TO_THE_TRIGGERER else 0)
    submitted = [e for e in sandbox.journal("kustomer")[mark:] if e.method == "POST" and e.path == BULK]
    assert sorted(item["externalId"] for e in submitted for item in e.body) == [
        "order-150",
        "order-151",
        "order-5",
        "order-9",
    ]
    lines = {line["key"]: (line["action"], line["status"]) for line in read_jsonl(tmp_path / "l2.jsonl")}
    assert Counter(lines.values()) == Counter(
        {("unchanged", "skipped"): 148, ("created", "ok"): 2, ("unchanged", "ok"): 2}
    )
    assert {key: ids[key] for key in ids} == {key: stored_by_external_id(sandbox)[key] for key in ids}
