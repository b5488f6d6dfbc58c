"""Every night: a CSV export of orders into Kustomer, HubSpot and two customer records.

1. ``export_orders``: the night's CSV export (``params.orders_csv``); with none given, a demo export
   of 500 orders is written, so the DAG runs as it is against the sandbox;
2. ``push_kobjects``: upsert each row as a Kustomer KObject by its ``external_id`` through Kustomer's
   bulk jobs (100 rows per request) — a rerun with changed values updates the objects the first run
   created, and never duplicates one;
3. ``link_records``: join the export with the KObject ids (all of them, however many);
4. ``upsert_hubspot_orders``: create or update the HubSpot orders, each carrying its KObject id;
5. ``link_licence_customer`` / ``tag_shop_customer``: point one Kaiten customer and one MicroBase
   customer at the newest order.

The CSV cells are text; the bulk operator types them by Kustomer's attribute suffixes:
``custom.totalNum`` becomes a number, ``custom.giftBool`` a boolean, ``custom.placedAt`` is
checked as a date-time, ``tags`` is split at ``|``, and an empty cell leaves the field as it is
(``column_types={...}`` overrides a column's type).

Files go under ``params.base_path``: the export, and a ledger and a dead-letter file per try. A
retry and the tasks downstream may run on other workers than the try before (``push_ids`` reads
the ledgers of every try, ``link_records`` reads the export), so a deployment with more than one
worker needs storage every worker reads — ``s3://my-bucket/crm-nightly`` with the Amazon provider
installed — not ``/tmp``.

Connections: ``kustomer_default``, ``hubspot_default``, ``kaiten_default``, ``microbase_default``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, Param, XComArg, task

from airflow_provider_crm.operators.bulk import HubSpotBulkUpsertOrdersOperator, KustomerBulkUpsertKObjectsOperator
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator
from airflow_provider_crm.retry_policy import crm_retry_kwargs

RUN_FOLDER = "{{ params.base_path }}/{{ dag.dag_id }}/{{ run_id }}"
# One ledger per try: object-storage files can't be appended to, and the summary's
# ledger_paths lists them all (push_ids reads every one).
TRY_FOLDER = RUN_FOLDER + "/try-{{ ti.try_number }}"

# Airflow waits retry_delay before a retry, and so does dag.test(): a test of the retry path sets
# CRM_NIGHTLY_SYNC_RETRY_DELAY=0 in its environment; deployments keep five minutes.
RETRY_DELAY = pendulum.duration(seconds=float(os.environ.get("CRM_NIGHTLY_SYNC_RETRY_DELAY", "300")))

DEMO_ORDERS = 500
CSV_COLUMNS = ["external_id", "title", "custom.totalNum", "custom.giftBool", "custom.placedAt", "tags"]


def demo_rows(count: int) -> list[list[str]]:
    """A stand-in for the warehouse export, the same every night: ``count`` orders as CSV cells."""
    placed = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.timezone.utc)
    return [
        [
            f"order-{n}",
            f"Order {n}",
            f"{10 + (n % 40) * 2.5:g}",  # "10", "12.5", ...
            "true" if n % 7 == 0 else "false",
            (placed + dt.timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "web|vip" if n % 10 == 0 else ("" if n % 3 == 0 else "web"),  # empty: leave the tags as they are
        ]
        for n in range(10001, 10001 + count)
    ]


with DAG(
    dag_id="crm_nightly_sync",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["crm", "example", "bulk"],
    # CrmRetryPolicy (Airflow 3.3+) fails at once what a retry can't fix (bad records, a refused
    # token) and leaves the rest to these retries, which send again only the records refused for a
    # reason that can pass (5xx, timeout, lost connection).
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, **crm_retry_kwargs()},
    params={
        "orders_csv": Param("", type="string", description="the night's export; empty: write a demo export"),
        "base_path": Param("/tmp/crm-nightly", type="string", description="storage every worker reads"),
        "kaiten_customer": Param("acme-corp", type="string"),
        "microbase_customer": Param("HkhhuXESl", type="string"),
    },
) as dag:

    @task
    def export_orders(orders_csv: str, folder: str) -> str:
        """The path of the night's export; writes the demo export when the run names none."""
        if orders_csv:
            return orders_csv
        target = ObjectStoragePath(f"{folder}/orders.csv")
        if target.protocol in ("", "file", "local"):
            target.parent.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        csv.writer(text).writerows([CSV_COLUMNS, *demo_rows(DEMO_ORDERS)])
        target.write_text(text.getvalue())
        return str(target)

    orders_csv = export_orders("{{ params.orders_csv }}", RUN_FOLDER)

    push_kobjects = KustomerBulkUpsertKObjectsOperator(
        task_id="push_kobjects",
        klass_name="ecomm-order",
        source=orders_csv,
        ledger_path=TRY_FOLDER + "/kustomer-ledger.jsonl",
        dead_letter_path=TRY_FOLDER + "/kustomer-rejected.jsonl",
        # XCom key "ids": every external id -> KObject id (up to 50,000; the summary's own "ids"
        # stops at 100 records).
        push_ids=True,
        # A bad row is dead-lettered and the others go on; up to 2% of bad rows, the task succeeds.
        # Rows refused for a reason that can pass (an outage, a timeout) always fail the task, and
        # its retry sends just those rows again.
        on_record_error="warn",
        max_reject_ratio=0.02,
    )

    @task(multiple_outputs=True)
    def link_records(orders_csv: str, kobject_ids: dict[str, str]) -> dict[str, Any]:
        """HubSpot's records for the orders Kustomer holds, and the newest order's KObject id."""
        rows = csv.DictReader(io.StringIO(ObjectStoragePath(orders_csv).read_text()))
        hubspot_orders: list[dict[str, Any]] = []
        placed: dict[str, dt.datetime] = {}  # KObject id -> when the order was placed
        for row in rows:
            kobject_id = kobject_ids.get(row["external_id"])
            if kobject_id is None:  # rejected by Kustomer: see its dead-letter file
                continue
            properties = {"hs_order_name": row["title"], "kustomer_kobject_id": kobject_id}
            if row["custom.totalNum"]:
                properties["hs_total_price"] = row["custom.totalNum"]  # HubSpot takes every value as text
            hubspot_orders.append({"id": row["external_id"], "properties": properties})
            if row["custom.placedAt"]:
                placed[kobject_id] = dt.datetime.fromisoformat(row["custom.placedAt"].replace("Z", "+00:00"))
        newest = max(placed, key=placed.__getitem__)
        return {
            "hubspot_orders": hubspot_orders,  # 500 small records suit XCom; for far more, pass a file as source
            "newest_kobject_id": newest,
            "shop_tags": ["nightly-sync", f"kustomer-{newest}"],
        }

    links = link_records(orders_csv, XComArg(push_kobjects, key="ids"))

    upsert_hubspot_orders = HubSpotBulkUpsertOrdersOperator(
        task_id="upsert_hubspot_orders",
        id_property="hs_external_order_id",  # the same key as the KObject's external id
        records=links["hubspot_orders"],
        ledger_path=TRY_FOLDER + "/hubspot-ledger.jsonl",
        dead_letter_path=TRY_FOLDER + "/hubspot-rejected.jsonl",
        on_record_error="warn",
        max_reject_ratio=0.02,
    )

    link_licence_customer = KaitenUpdateCustomerOperator(
        task_id="link_licence_customer",
        customer_slug="{{ params.kaiten_customer }}",
        external_customer_id=links["newest_kobject_id"],  # name and domain keep their values
    )

    tag_shop_customer = MicroBaseUpdateCustomerOperator(
        task_id="tag_shop_customer",
        customer_id="{{ params.microbase_customer }}",
        tags=links["shop_tags"],
    )

    upsert_hubspot_orders >> [link_licence_customer, tag_shop_customer]
