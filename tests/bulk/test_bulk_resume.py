"""A retried bulk task resumes from its durable progress instead of rewriting what it wrote.

The progress lives in Airflow 3.3's task state store; before 3.3 a retry re-sends every record
through the idempotent writes, so nothing is duplicated.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_crm.sandbox import HttpStatus, Sandbox
from tests.airflow_versions import before_airflow_3_3, requires_airflow_3_3
from tests.helpers import task_states

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkUpdateKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KustomerBulkUpdateKObjectsOperator(
        task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, max_workers=1,
        retries=1, retry_delay=pendulum.duration(seconds=0),
    )
"""


@pytest.fixture
def kobject_ids(sandbox: Sandbox) -> list[str]:
    return [sandbox.kustomer.seed("orders", {"title": f"Order {i}"})["id"] for i in range(10)]


@requires_airflow_3_3("context['task_state_store'] (durable progress across task tries)")
def test_retry_skips_records_already_written(
    run_dag, sandbox: Sandbox, kustomer_conn: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    records = [{"id": kobject_id, "custom": {"syncedBool": True}} for kobject_id in kobject_ids]
    # The 7th write meets an auth failure, which stops the run (it would hit every record alike).
    sandbox.inject("kustomer", HttpStatus(status=401, method="PUT", path_pattern=f"/{kobject_ids[6]}$"))
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(DAG.replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger))))

    assert task_states(run) == {"sync": "success"}
    puts = Counter(e.path.rsplit("/", 1)[-1] for e in sandbox.writes("kustomer"))
    assert [puts[i] for i in kobject_ids[:6]] == [1] * 6, "the retry sent nothing written before the failure"
    assert puts[kobject_ids[6]] == 2, "the failed record was sent again"
    # A record already in flight when the run stopped may be sent once more (PUT is idempotent).
    assert all(1 <= puts[i] <= 2 for i in kobject_ids[7:])
    assert all(o["custom"] == {"syncedBool": True} for o in sandbox.state("kustomer").kobjects("orders"))
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert {line["key"] for line in lines} == set(kobject_ids), "the ledger accounts for every record"
    assert {line["action"] for line in lines} == {"updated"}


@before_airflow_3_3("Re-sending every record on retry (no task state store)")
def test_retry_resends_every_record_without_a_state_store(
    run_dag, sandbox: Sandbox, kustomer_conn: str, kobject_ids: list[str], tmp_path: Path
) -> None:
    records = [{"id": kobject_id, "custom": {"syncedBool": True}} for kobject_id in kobject_ids]
    sandbox.inject("kustomer", HttpStatus(status=401, method="PUT", path_pattern=f"/{kobject_ids[6]}$"))
    ledger = tmp_path / "ledger.jsonl"
    run = run_dag(DAG.replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger))))

    assert task_states(run) == {"sync": "success"}
    puts = Counter(e.path.rsplit("/", 1)[-1] for e in sandbox.writes("kustomer"))
    assert [puts[i] for i in kobject_ids[:7]] == [2] * 7, "the retry sent the first try's records again"
    assert all(1 <= puts[i] <= 2 for i in kobject_ids[7:])
    kobjects = sandbox.state("kustomer").kobjects("orders")
    assert len(kobjects) == len(kobject_ids), "re-sent updates create nothing"
    assert all(o["custom"] == {"syncedBool": True} for o in kobjects)
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert {line["key"] for line in lines} == set(kobject_ids), "the ledger accounts for every record"
