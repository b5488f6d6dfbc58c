"""Kustomer writes with ``Id`` (reference) attributes and ``rev`` inside real Airflow (``dag.test()``).

Each test asserts on what the sandbox received (journal) and holds (state), not on the operators' calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from airflow_provider_crm.operators.bulk import KustomerBulkUpdateKObjectsOperator
from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import read_jsonl, task_states, xcom_values
from tests.operators.conftest import dag_source

KLASS = "ecomm-order"
ORDER_ID = "5822a4a5aa5f92110005d69a"
COMPANY = "5d811e40de762100130174a8"

SINGLE = dag_source(
    f"""
    create = KustomerCreateKObjectOperator(
        task_id="create",
        klass_name="{KLASS}",
        title="Return for order 1059",
        external_id="return-1059",
        company_id="{COMPANY}",
        icon="truck-delivery",
        images=["https://cdn.example.com/hoodie.jpg"],
        custom={{"primaryOrderId": "{ORDER_ID}", "reasonStr": "size"}},
    )

    @task
    def current_rev(kobject_id: str) -> int:
        return KustomerHook().get_kobject("{KLASS}", kobject_id).rev

    rev = current_rev(create.output)
    update = KustomerUpdateKObjectOperator(
        task_id="update",
        klass_name="{KLASS}",
        kobject_id=create.output,
        rev=rev,
        parent="{ORDER_ID}",
        custom={{"replacementOrderId": "{{{{ ti.xcom_pull(task_ids='create') }}}}"}},
    )
    rev >> update
    """,
    "from airflow_provider_crm.hooks.kustomer import KustomerHook",
    "from airflow_provider_crm.operators.kustomer import KustomerCreateKObjectOperator, KustomerUpdateKObjectOperator",
)


def test_single_record_operators_write_id_attributes_and_rev(
    run_dag: Callable[..., object], kustomer_conn: str, sandbox: Sandbox
) -> None:
    run = run_dag(SINGLE)

    assert task_states(run) == {"create": "success", "current_rev": "success", "update": "success"}
    [record] = sandbox.state("kustomer").kobjects(KLASS)
    assert xcom_values(run)["create"] == record["id"]
    [post, put] = sandbox.writes("kustomer")
    assert post.body["custom"] == {"primaryOrderId": ORDER_ID, "reasonStr": "size"}
    assert (post.body["company"], post.body["icon"]) == (COMPANY, "truck-delivery")
    # A new KObject is at rev 0 (Kustomer's examples); the update sends the 0 it read, and raises it to 1.
    assert put.body == {"rev": 0, "parent": ORDER_ID, "custom": {"replacementOrderId": record["id"]}}
    assert record["custom"] == {"primaryOrderId": ORDER_ID, "reasonStr": "size", "replacementOrderId": record["id"]}
    assert (record["rev"], record["parent"], record["company"]) == (1, ORDER_ID, COMPANY)


STALE = dag_source(
    f"""
    KustomerUpdateKObjectOperator(
        task_id="update",
        klass_name="{KLASS}",
        kobject_id="__KOBJECT_ID__",
        rev="{{{{ params.rev }}}}",
        params={{"rev": 2}},
        custom={{"primaryOrderId": "{ORDER_ID}"}},
    )
    """,
    "from airflow_provider_crm.operators.kustomer import KustomerUpdateKObjectOperator",
)


def test_stale_rev_fails_the_task_and_changes_nothing(
    run_dag: Callable[..., object], kustomer_conn: str, sandbox: Sandbox
) -> None:
    seeded = sandbox.kustomer.seed(KLASS, {"title": "o", "custom": {"primaryOrderId": "older"}}, rev=3)

    run = run_dag(STALE.replace("__KOBJECT_ID__", seeded["id"]))

    assert task_states(run) == {"update": "failed"}
    [put] = sandbox.writes("kustomer")
    assert (put.status, put.body["rev"]) == (409, 2), "the templated rev arrives as a number; sent once"
    held = sandbox.state("kustomer").get(KLASS, seeded["id"])
    assert held is not None and (held["rev"], held["custom"]) == (3, {"primaryOrderId": "older"})


BULK = dag_source(
    f"""
    created = KustomerBulkCreateKObjectsOperator(
        task_id="create",
        klass_name="{KLASS}",
        records=[
            {{"external_id": "r-1", "title": "Return 1", "custom": {{"primaryOrderId": "{ORDER_ID}"}}}},
            {{"external_id": "r-2", "title": "Return 2", "company_id": "{COMPANY}",
              "custom": {{"primaryOrderId": "5822a4a5aa5f92110005d69b"}}}},
            {{"external_id": "r-3", "title": "Return 3", "custom": {{"primaryOrderId": ""}}}},
        ],
        on_record_error="skip",
        max_reject_ratio=0.5,
        max_workers=1,
        mode="per_record",
    )

    @task
    def updates(summary: dict) -> list:
        return [
            {{"id": kobject_id, "rev": 0, "custom": {{"refundOrderId": key + "-refund"}}}}
            for key, kobject_id in sorted(summary["ids"].items())
        ]

    KustomerBulkUpdateKObjectsOperator(
        task_id="update", klass_name="{KLASS}", records=updates(created.output), max_workers=1, mode="per_record"
    )
    """,
    "from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator",
    "from airflow_provider_crm.operators.bulk import KustomerBulkUpdateKObjectsOperator",
)


def test_bulk_operators_write_id_attributes(
    run_dag: Callable[..., object], kustomer_conn: str, sandbox: Sandbox
) -> None:
    run = run_dag(BULK)

    assert task_states(run) == {"create": "success", "updates": "success", "update": "success"}
    summary = xcom_values(run)["create"]
    assert isinstance(summary, dict)
    assert (summary["created"], summary["rejected"]) == (2, 1)
    posts = [entry for entry in sandbox.writes("kustomer") if entry.method == "POST"]
    assert sorted(entry.body["externalId"] for entry in posts) == ["r-1", "r-2"], "the empty Id was never sent"
    assert all(entry.status == 201 for entry in posts)
    puts = [entry for entry in sandbox.writes("kustomer") if entry.method == "PUT"]
    assert [entry.status for entry in puts] == [200, 200]
    assert all(entry.body["rev"] == 0 for entry in puts), "new objects are at rev 0"
    held = {record["externalId"]: record for record in sandbox.state("kustomer").kobjects(KLASS)}
    assert held["r-1"]["custom"] == {"primaryOrderId": ORDER_ID, "refundOrderId": "r-1-refund"}
    assert held["r-2"]["custom"] == {"primaryOrderId": "5822a4a5aa5f92110005d69b", "refundOrderId": "r-2-refund"}
    assert (held["r-1"]["rev"], held["r-2"]["rev"], held["r-2"]["company"]) == (1, 1, COMPANY)


def test_bulk_update_dry_run_reports_a_stale_rev_and_writes_nothing(
    kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    current = sandbox.kustomer.seed(KLASS, {"title": "current"}, rev=4)
    stale = sandbox.kustomer.seed(KLASS, {"title": "stale"}, rev=6)
    ledger = tmp_path / "ledger.jsonl"
    records = [
        {"id": current["id"], "rev": 4, "custom": {"primaryOrderId": ORDER_ID}},
        {"id": stale["id"], "rev": 5, "custom": {"primaryOrderId": ORDER_ID}},
    ]

    report = KustomerBulkUpdateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=records, ledger_path=str(ledger), dry_run=True
    ).execute({})

    lines = {line["key"]: line for line in read_jsonl(ledger)}
    assert lines[current["id"]]["action"] == "would_update"
    assert (lines[stale["id"]]["action"], lines[stale["id"]]["error_code"]) == ("invalid", "stale_rev")
    assert "rev 5 is stale" in lines[stale["id"]]["error_message"]
    assert report["would_update"] == 1 and report["invalid"] == 1
    assert sandbox.writes("kustomer") == []
