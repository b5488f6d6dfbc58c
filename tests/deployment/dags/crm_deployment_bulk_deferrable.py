"""A deferrable Kustomer bulk run for tests/deployment: the jobs are waited for in the triggerer.

The records come from an upstream task's XCom, the klass, the record count and the ledger path from
templates, so the worker has to render them and read the XCom through the execution API.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator

with DAG(
    dag_id="crm_deployment_bulk_deferrable",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={
        "klass": Param("deployment-order", type="string"),
        "count": Param(150, type="integer"),
        "output": Param("/tmp/crm-deployment", type="string"),
    },
) as dag:

    @task
    def make_orders(count: str) -> list[dict]:
        """``count`` arrives rendered from ``params.count``, as text."""
        return [
            {"external_id": f"bulk-order-{n}", "title": f"Order {n}", "custom": {"orderNumberNum": n}}
            for n in range(int(count))
        ]

    KustomerBulkCreateKObjectsOperator(
        task_id="push_orders",
        klass_name="{{ params.klass }}",
        records=make_orders("{{ params.count }}"),
        ledger_path="{{ params.output }}/{{ run_id }}/kustomer-ledger.jsonl",
        push_ids=True,
        deferrable=True,
        poll_interval=0.5,
        retries=0,
    )
