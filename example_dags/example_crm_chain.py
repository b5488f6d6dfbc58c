"""Create a Kustomer KObject, then update it, passing its id through XCom.

Connections: ``kustomer_default`` (see the README). Run against the bundled sandbox with
``bash scripts/demo.sh``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_crm.operators.kustomer import (
    KustomerCreateKObjectOperator,
    KustomerUpdateKObjectOperator,
)

with DAG(
    dag_id="crm_example_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["crm", "example"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30)},
) as dag:
    create_order = KustomerCreateKObjectOperator(
        task_id="create_order",
        klass_name="ecomm-order",
        title="Order {{ run_id }}",
        # A stable key from the source system makes the create safe to retry.
        external_id="order-{{ run_id }}",
        custom={
            "orderNumberNum": 1042,
            "orderStatusStr": "placed",
            "orderUpdatedAt": "{{ dag_run.run_after.isoformat() }}",
        },
        tags=["airflow"],
    )

    ship_order = KustomerUpdateKObjectOperator(
        task_id="ship_order",
        klass_name="ecomm-order",
        kobject_id="{{ ti.xcom_pull(task_ids='create_order') }}",
        custom={"orderStatusStr": "shipped", "refundedBool": False},
    )

    create_order >> ship_order
