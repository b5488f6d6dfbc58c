"""One order flowing through four customer systems, ids passed along through XCom.

1. Kustomer: create the order as a KObject (its id goes to XCom);
2. Kustomer: mark it shipped, addressed by that id;
3. Kaiten: link the customer to the Kustomer object (only that field changes);
4. MicroBase: tag the shop customer with it;
5. HubSpot: patch the CRM order, found by its external order id, with the KObject id.

Connections: ``kustomer_default``, ``kaiten_default``, ``microbase_default`` and
``hubspot_default`` (see the README). ``bash scripts/demo.sh`` runs it against the sandbox.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_crm.operators.hubspot import HubSpotUpdateOrderOperator
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.operators.kustomer import (
    KustomerCreateKObjectOperator,
    KustomerUpdateKObjectOperator,
)
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator

KOBJECT_ID = "{{ ti.xcom_pull(task_ids='create_order') }}"
ORDER_NUMBER = 1042

with DAG(
    dag_id="crm_example_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["crm", "example"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30)},
    params={
        "kaiten_customer": Param("acme-corp", type="string"),
        "microbase_customer": Param("HkhhuXESl", type="string"),
    },
) as dag:
    create_order = KustomerCreateKObjectOperator(
        task_id="create_order",
        klass_name="ecomm-order",
        title=f"Order {ORDER_NUMBER}",
        # A stable key from the source system makes the create safe to retry.
        external_id=f"order-{ORDER_NUMBER}",
        custom={
            "orderNumberNum": ORDER_NUMBER,
            "orderStatusStr": "placed",
            "orderUpdatedAt": "{{ dag_run.run_after.isoformat() }}",
        },
        tags=["airflow"],
    )

    ship_order = KustomerUpdateKObjectOperator(
        task_id="ship_order",
        klass_name="ecomm-order",
        kobject_id=KOBJECT_ID,
        custom={"orderStatusStr": "shipped", "refundedBool": False},
    )

    link_licence_customer = KaitenUpdateCustomerOperator(
        task_id="link_licence_customer",
        customer_slug="{{ params.kaiten_customer }}",
        external_customer_id=KOBJECT_ID,  # name and domain keep their current values
    )

    tag_shop_customer = MicroBaseUpdateCustomerOperator(
        task_id="tag_shop_customer",
        customer_id="{{ params.microbase_customer }}",
        status="ACTIVE",
        tags=["ordered", "kustomer-" + KOBJECT_ID],
    )

    patch_crm_order = HubSpotUpdateOrderOperator(
        task_id="patch_crm_order",
        order_id=f"order-{ORDER_NUMBER}",
        id_property="hs_external_order_id",
        properties={"kustomer_kobject_id": KOBJECT_ID, "hs_fulfillment_status": "shipped"},
    )

    create_order >> ship_order >> link_licence_customer >> tag_shop_customer >> patch_crm_order
