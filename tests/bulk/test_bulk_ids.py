"""The key → id map of a bulk run of any size reaches a downstream task: ``push_ids`` and ``read_ids``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_crm.bulk import ids as ids_module
from airflow_provider_crm.bulk.ids import TooManyIdsError, read_ids
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator
from airflow_provider_crm.sandbox import Sandbox, ServerError
from tests.airflow_versions import requires_airflow_3_3
from tests.conftest import use_connection
from tests.helpers import task_states, xcom_values

RECORDS = 520

DAG = """
import pendulum
from airflow.sdk import DAG, XComArg, task
from airflow_provider_crm.bulk.ids import read_ids
from airflow_provider_crm.operators.bulk import HubSpotBulkUpsertOrdersOperator, KustomerBulkCreateKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    push = KustomerBulkCreateKObjectsOperator(
        task_id="push", klass_name="orders", records=RECORDS_SOURCE, ledger_path=LEDGER, push_ids=True, mode=MODE,
        rate_limit=0, max_workers=4, on_record_error="warn", max_reject_ratio=0.1,
        retries=1, retry_delay=pendulum.duration(seconds=0),
    )

    @task
    def to_hubspot(ids: dict) -> list[dict]:
        return [{"id": ext, "properties": {"kustomer_kobject_id": kobject}} for ext, kobject in ids.items()]

    @task(multiple_outputs=False)  # one XCom, not one per key
    def from_ledger(summary: dict) -> dict:
        return read_ids(*summary["ledger_paths"])

    HubSpotBulkUpsertOrdersOperator(
        task_id="upsert_orders", id_property="hs_external_order_id", records=to_hubspot(XComArg(push, key="ids")),
    )
    from_ledger(push.output)
"""


def dag(ledger: str, records: int = RECORDS, mode: str = "bulk_job") -> str:
    source = f"[{{'external_id': f'order-{{n}}', 'title': f'Order {{n}}'}} for n in range({records})]"
    return DAG.replace("RECORDS_SOURCE", source).replace("LEDGER", repr(ledger)).replace("MODE", repr(mode))


def hubspot_links(sandbox: Sandbox) -> dict[str, str]:
    """External order id → the KObject id HubSpot received for it."""
    orders = sandbox.state("hubspot").orders()
    return {o["properties"]["hs_external_order_id"]: o["properties"]["kustomer_kobject_id"] for o in orders}


def kobject_ids(sandbox: Sandbox) -> dict[str, str]:
    return {o["externalId"]: o["id"] for o in sandbox.state("kustomer").kobjects("orders")}


def test_a_downstream_task_gets_every_id_of_a_large_run(
    run_dag, sandbox: Sandbox, kustomer_conn: str, hubspot_conn: str, tmp_path: Path
) -> None:
    run = run_dag(dag(str(tmp_path / "ledger.jsonl")))

    assert set(task_states(run).values()) == {"success"}
    stored = kobject_ids(sandbox)
    assert len(stored) == RECORDS
    values = xcom_values(run)
    assert "ids" not in values["push"], "the summary carries ids only up to 100 records"
    assert values["from_ledger"] == stored, "read_ids gives the downstream task every key and id"
    [push] = [ti for ti in run.get_task_instances() if ti.task_id == "push"]  # type: ignore[attr-defined]
    assert push.xcom_pull(task_ids="push", key="ids") == stored, "push_ids pushed every key and id"
    assert hubspot_links(sandbox) == stored, "HubSpot received the 520 KObject ids, each on its order"


@requires_airflow_3_3("context['task_state_store'] (the ledgers of earlier tries)")
def test_pushed_ids_include_the_earlier_tries_with_a_ledger_per_try(
    run_dag, sandbox: Sandbox, hubspot_conn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A ledger path per try (as on object storage): the ids written by try 1 are still pushed by try 2."""
    connection = sandbox.airflow_connection("kustomer") | {"extra": {"max_attempts": 1}}
    use_connection(monkeypatch, "kustomer_default", connection)
    sandbox.inject("kustomer", ServerError(status=503, method="POST", count=30))  # 30 of 150 wait for try 2
    ledger = f"{tmp_path}/{{{{ ti.try_number }}}}/ledger.jsonl"
    run = run_dag(dag(ledger, records=150, mode="per_record"))

    assert set(task_states(run).values()) == {"success"}
    stored = kobject_ids(sandbox)
    assert len(stored) == 150
    summary = xcom_values(run)["push"]
    assert summary["ledger_paths"] == [f"{tmp_path}/1/ledger.jsonl", f"{tmp_path}/2/ledger.jsonl"]
    assert summary["resumed_from"] == 120 and summary["created"] == 150
    try_2 = [json.loads(line) for line in Path(summary["ledger_paths"][1]).read_text().splitlines()]
    assert len(try_2) == 30, "try 2 sent only the records refused by the outage"
    assert xcom_values(run)["from_ledger"] == stored
    assert hubspot_links(sandbox) == stored, "the ids written by try 1 reached HubSpot too"


def ledger_line(index: int, key: str, action: str, remote_id: str | None, status: str = "ok") -> str:
    line = {"index": index, "key": key, "action": action, "remote_id": remote_id, "status": status}
    return json.dumps(line | {"error_code": None, "error_message": None})


def test_read_ids_keeps_written_records_and_the_last_id_of_a_key(tmp_path: Path) -> None:
    first, second = tmp_path / "try-1.jsonl", tmp_path / "try-2.jsonl"
    first.write_text(
        "\n".join(
            [
                ledger_line(0, "a", "created", "id-a"),
                ledger_line(1, "b", "rejected", None, "retry"),
                ledger_line(2, "c", "rejected", None, "error"),
                ledger_line(3, "d", "unchanged", "id-d"),
                ledger_line(4, "e", "not_attempted", None, "skipped"),
                ledger_line(5, "f", "would_create", None),
                ledger_line(6, "g", "unchanged", "id-g-preview", "exists"),
                ledger_line(7, "a", "updated", "id-a2"),
                '{"index": 8, "key": "h", "action": "cre',  # cut off by a killed worker
            ]
        )
        + "\n"
    )
    second.write_text(ledger_line(1, "b", "created", "id-b") + "\n" + ledger_line(4, "e", "created", "id-e") + "\n")
    assert read_ids(first) == {"a": "id-a2", "d": "id-d"}
    assert read_ids(first, second) == {"a": "id-a2", "d": "id-d", "b": "id-b", "e": "id-e"}
    assert read_ids(f"file://{first}", f"file://{second}") == read_ids(first, second), "object-storage URLs"
    with pytest.raises(TooManyIdsError, match="read_ids"):
        read_ids(first, second, limit=3)


def test_push_ids_above_the_cap_fails_after_writing_and_names_the_way_out(
    sandbox: Sandbox, kustomer_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids_module, "MAX_PUSHED_IDS", 10)
    ledger = tmp_path / "ledger.jsonl"
    operator = KustomerBulkCreateKObjectsOperator(
        task_id="t",
        klass_name="orders",
        records=[{"external_id": f"o-{n}", "title": "t"} for n in range(11)],
        ledger_path=str(ledger),
        push_ids=True,
        rate_limit=0,
    )
    with pytest.raises(TooManyIdsError, match=r"more than 10 records.*read_ids\(\*ledger_paths\)") as caught:
        operator.execute({})
    assert str(ledger) in str(caught.value)
    assert len(kobject_ids(sandbox)) == 11, "every record was written first"
    assert len(read_ids(ledger)) == 11


def test_push_ids_needs_a_ledger() -> None:
    with pytest.raises(ValueError, match="ledger_path"):
        KustomerBulkCreateKObjectsOperator(task_id="t", klass_name="orders", records=[], push_ids=True)
