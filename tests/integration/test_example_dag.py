"""The example DAG, unmodified, runs end to end in real Airflow against the sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import task_states, xcom_values

REPO = Path(__file__).resolve().parents[2]


def test_example_dag_creates_then_updates_the_same_kobject(
    run_dag, kustomer_conn: str, sandbox: Sandbox
) -> None:
    source = (REPO / "example_dags" / "example_crm_chain.py").read_text()
    run = run_dag(source, dag_id="crm_example_chain")
    assert set(task_states(run).values()) == {"success"}
    [record] = sandbox.state("kustomer").kobjects("ecomm-order")
    assert xcom_values(run) == {"create_order": record["id"], "ship_order": record["id"]}
    assert record["custom"]["orderStatusStr"] == "shipped"
    assert record["externalId"] == f"order-{run.run_id}"  # type: ignore[attr-defined]


def test_airflow_lists_the_provider_and_its_connection_type(airflow_db: Path) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    providers = subprocess.run([airflow, "providers", "list"], capture_output=True, text=True, check=True)
    assert "airflow-provider-crm" in providers.stdout
    hooks = subprocess.run([airflow, "providers", "hooks"], capture_output=True, text=True, check=True)
    assert "kustomer" in hooks.stdout
    assert "airflow_provider_crm.hooks.kustomer.KustomerHook" in hooks.stdout
