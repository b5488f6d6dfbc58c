"""The example DAG, unmodified, runs end to end in real Airflow against the sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.example_data import (
    EXAMPLE_KAITEN_CUSTOMER,
    EXAMPLE_MICROBASE_CUSTOMER,
    seed_example,
)
from tests.helpers import task_states, xcom_values

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "example_dags" / "example_crm_chain.py").read_text()


@pytest.fixture
def example_sandbox(
    sandbox: Sandbox, kustomer_conn: str, kaiten_conn: str, microbase_conn: str, hubspot_conn: str
) -> Sandbox:
    seed_example(sandbox)
    return sandbox


def test_example_dag_passes_the_kobject_id_through_all_four_vendors(run_dag, example_sandbox: Sandbox) -> None:
    sandbox = example_sandbox
    run = run_dag(EXAMPLE, dag_id="crm_example_chain")
    assert set(task_states(run).values()) == {"success"}
    [record] = sandbox.state("kustomer").kobjects("ecomm-order")
    kobject_id = record["id"]
    assert record["custom"]["orderStatusStr"] == "shipped"
    assert record["externalId"] == "order-1042"

    [order] = sandbox.state("hubspot").orders()
    # Airflow's metadata-DB reader turns a numeric-looking string XCom ("1000001") into an int.
    assert {task: str(value) for task, value in xcom_values(run).items()} == {
        "create_order": kobject_id,
        "ship_order": kobject_id,
        "link_licence_customer": EXAMPLE_KAITEN_CUSTOMER,
        "tag_shop_customer": EXAMPLE_MICROBASE_CUSTOMER,
        "patch_crm_order": order["id"],
    }
    kaiten = sandbox.state("kaiten").get(EXAMPLE_KAITEN_CUSTOMER)
    assert (kaiten["externalCustomerId"], kaiten["domain"]) == (kobject_id, "acme.example")
    shop = sandbox.state("microbase").get(EXAMPLE_MICROBASE_CUSTOMER)
    assert shop["tags"] == ["ordered", f"kustomer-{kobject_id}"]
    assert order["properties"]["kustomer_kobject_id"] == kobject_id
    assert order["properties"]["hs_fulfillment_status"] == "shipped"


def test_example_dag_rerun_creates_no_second_kobject(run_dag, example_sandbox: Sandbox) -> None:
    first = run_dag(EXAMPLE, dag_id="crm_example_chain")
    second = run_dag(EXAMPLE, dag_id="crm_example_chain")
    assert set(task_states(second).values()) == {"success"}
    assert len(example_sandbox.state("kustomer").kobjects("ecomm-order")) == 1
    assert xcom_values(first)["create_order"] == xcom_values(second)["create_order"]


def test_airflow_lists_the_provider_and_its_connection_types(airflow_db: Path) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    providers = subprocess.run([airflow, "providers", "list"], capture_output=True, text=True, check=True)
    assert "airflow-provider-crm" in providers.stdout
    hooks = subprocess.run([airflow, "providers", "hooks"], capture_output=True, text=True, check=True)
    for hook in (
        "kustomer.KustomerHook",
        "kaiten.KaitenHook",
        "microbase.MicroBaseHook",
        "hubspot.HubSpotHook",
    ):
        assert f"airflow_provider_crm.hooks.{hook}" in hooks.stdout
