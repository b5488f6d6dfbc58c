"""The example DAGs run in a deployment that sends OpenLineage events, as its owner tests them.

Not collected here: ``test_lineage_events.py`` copies this file, as ``tests/test_lineage.py``, into
a project of its own next to ``dags/`` (the example DAGs, unchanged) and runs pytest there with the
OpenLineage transport in the environment, then reads the events the listener wrote. Each test
writes what those events must name (the sandbox's address, the files read) to
``$CRM_LINEAGE_FACTS/<test>.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow_provider_crm.sandbox.dag_runner import CrmAirflow
from airflow_provider_crm.sandbox.example_data import seed_example

DAGS = Path(__file__).parents[1] / "dags"

PARTIAL_FAILURE_DAG = """
import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_crm.operators.bulk import KaitenBulkUpdateCustomersOperator

with DAG(
    dag_id="crm_lineage_partial_failure",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"source": Param("", type="string")},
):
    KaitenBulkUpdateCustomersOperator(
        task_id="update_customers",
        source="{{ params.source }}",
        on_record_error="warn",
        max_reject_ratio=0.0,
        retries=0,
    )
"""


def remember(name: str, crm: CrmAirflow, **facts: Any) -> None:
    """Write the sandbox's vendor URLs and ``facts`` where the test reading the events finds them."""
    urls = {vendor: crm.sandbox.base_url(vendor) for vendor in crm.sandbox.vendors}
    folder = Path(os.environ["CRM_LINEAGE_FACTS"])
    (folder / f"{name}.json").write_text(json.dumps({"sandbox": urls, **facts}))


def test_the_chain_writes_one_record_per_task(crm_airflow: CrmAirflow) -> None:
    seed_example(crm_airflow.sandbox)
    crm_airflow.run(DAGS / "example_crm_chain.py")
    remember("chain", crm_airflow)


def test_the_nightly_sync_reads_its_export(crm_airflow: CrmAirflow, tmp_path: Path) -> None:
    seed_example(crm_airflow.sandbox)
    run = crm_airflow.run(DAGS / "example_nightly_sync.py", conf={"base_path": str(tmp_path)})
    remember("nightly", crm_airflow, orders_csv=crm_airflow.xcom(run, "export_orders"))


def test_the_bulk_example_writes_its_orders(crm_airflow: CrmAirflow) -> None:
    crm_airflow.run(DAGS / "example_bulk_sync.py")
    remember("bulk", crm_airflow)


def test_a_bulk_run_that_fails_after_writing_some_records(crm_airflow: CrmAirflow, tmp_path: Path) -> None:
    crm_airflow.sandbox.app("kaiten").seed("acme-corp", "Acme Corp")
    source = tmp_path / "customers.jsonl"
    lines = [{"slug": "acme-corp", "name": "Acme Corporation"}, {"slug": "no-such-customer", "name": "Nobody"}]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dag = tmp_path / "dags" / "partial_failure.py"
    dag.parent.mkdir()
    dag.write_text(PARTIAL_FAILURE_DAG)
    run = crm_airflow.run(dag, conf={"source": str(source)}, check=False)
    assert crm_airflow.task_states(run) == {"update_customers": "failed"}
    remember("partial", crm_airflow, source=str(source))
