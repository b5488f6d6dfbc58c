"""The bulk example DAG runs in real Airflow, inside its pools, against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import task_states, xcom_values

REPO = Path(__file__).resolve().parents[2]


def test_bulk_example_writes_every_order_and_its_ledgers(
    run_dag, sandbox: Sandbox, kustomer_conn: str, hubspot_conn: str, airflow_db: Path
) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    for pool, slots in (("crm_kustomer", "2"), ("crm_hubspot", "1")):
        subprocess.run([airflow, "pools", "set", pool, slots, "CRM API"], check=True, capture_output=True)
    run = run_dag((REPO / "example_dags" / "example_bulk_sync.py").read_text(), dag_id="crm_bulk_sync")
    assert set(task_states(run).values()) == {"success"}
    summaries = xcom_values(run)
    assert summaries["push_to_kustomer"]["created"] == 50
    assert summaries["upsert_to_hubspot"]["created"] == 50
    assert len(sandbox.state("kustomer").kobjects("ecomm-order")) == 50
    assert sandbox.state("hubspot").count() == 50
    ledger = Path(summaries["push_to_kustomer"]["ledger_path"])
    assert len([json.loads(line) for line in ledger.read_text().splitlines()]) == 50
