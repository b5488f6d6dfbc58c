"""The HubSpot operator inside real Airflow (``dag.test()``) against the emulator."""

from __future__ import annotations

from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import xcom_values


def test_hubspot_patch_by_id_property_returns_the_internal_id(run_dag, sandbox: Sandbox, hubspot_conn: str) -> None:
    internal_id = sandbox.app("hubspot").seed({"hs_external_order_id": "ext-7", "hs_fulfillment_status": "placed"})
    run = run_dag(
        """
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_crm.operators.hubspot import HubSpotUpdateOrderOperator

    with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        HubSpotUpdateOrderOperator(
            task_id="patch",
            order_id="ext-7",
            id_property="hs_external_order_id",
            properties={"hs_order_name": "{{ dag.dag_id }}", "hs_fulfillment_status": None, "hs_is_gift": True},
            clear_nulls=True,
        )
    """
    )
    assert str(xcom_values(run)["patch"]) == internal_id
    props = sandbox.state("hubspot").get(internal_id)["properties"]
    assert props["hs_is_gift"] == "true"
    assert props.get("hs_fulfillment_status") in ("", None), "clear_nulls cleared it"
    assert sandbox.writes("hubspot")[0].body["properties"]["hs_fulfillment_status"] == ""
