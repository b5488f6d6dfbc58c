"""Push a batch of orders into Kustomer and HubSpot at the vendors' rate limits.

The per-connection rate limiter works inside one worker. To keep the whole deployment under a
vendor's limit, cap how many of these tasks run at once with an Airflow pool, and give each task
its share of the limit:

    airflow pools set crm_kustomer 2 "Kustomer API: bulk tasks at once"
    airflow pools set crm_hubspot 1 "HubSpot API: bulk tasks at once"

With 2 slots and Kustomer's 1,000 requests a minute, each task gets ``rate_limit=8`` (2 x 8 = 16
requests/s, just under 16.7). Every task writes a ledger (one line per record) and a dead-letter
file of rejected records, which the same operator accepts as ``source`` to replay them.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_crm.operators.bulk import (
    HubSpotBulkUpsertOrdersOperator,
    KustomerBulkCreateKObjectsOperator,
)

OUTPUT = "/tmp/crm-bulk/{{ dag.dag_id }}/{{ run_id }}"

with DAG(
    dag_id="crm_bulk_sync",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["crm", "example", "bulk"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
) as dag:

    @task
    def extract_orders() -> list[dict]:
        """Stands in for a warehouse query; real pipelines often pass a file path instead."""
        return [
            {"external_id": f"order-{n}", "title": f"Order {n}", "custom": {"orderNumberNum": n, "totalNum": n * 1.5}}
            for n in range(2000, 2050)
        ]

    orders = extract_orders()

    push_to_kustomer = KustomerBulkCreateKObjectsOperator(
        task_id="push_to_kustomer",
        klass_name="ecomm-order",
        records=orders,
        ledger_path=f"{OUTPUT}/kustomer-ledger.jsonl",
        dead_letter_path=f"{OUTPUT}/kustomer-rejected.jsonl",
        on_record_error="warn",
        max_reject_ratio=0.02,
        rate_limit=8,
        max_workers=4,
        pool="crm_kustomer",
    )

    @task
    def to_hubspot_orders(orders: list[dict]) -> list[dict]:
        return [
            {
                "id": o["external_id"],
                "properties": {"hs_order_name": o["title"], "hs_total_price": o["custom"]["totalNum"]},
            }
            for o in orders
        ]

    upsert_to_hubspot = HubSpotBulkUpsertOrdersOperator(
        task_id="upsert_to_hubspot",
        records=to_hubspot_orders(orders),
        id_property="hs_external_order_id",
        ledger_path=f"{OUTPUT}/hubspot-ledger.jsonl",
        dead_letter_path=f"{OUTPUT}/hubspot-rejected.jsonl",
        on_record_error="warn",
        max_reject_ratio=0.02,
        pool="crm_hubspot",
    )

    push_to_kustomer >> upsert_to_hubspot
