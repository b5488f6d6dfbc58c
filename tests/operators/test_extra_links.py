"""Extra links resolve to the vendor's record page in the XComs of a real ``dag.test()`` run."""

from __future__ import annotations

from airflow_provider_crm.sandbox import Sandbox
from tests.conftest import use_connection


def test_links_are_pushed_from_the_ids_the_operators_got(run_dag, sandbox: Sandbox, monkeypatch) -> None:
    use_connection(
        monkeypatch, "hubspot_default", sandbox.airflow_connection("hubspot") | {"extra": {"portal_id": "4242"}}
    )
    kustomer_template = "https://acme.kustomerapp.com/app/klasses/{klass}/{id}"
    use_connection(
        monkeypatch,
        "kustomer_default",
        sandbox.airflow_connection("kustomer") | {"extra": {"record_url_template": kustomer_template}},
    )
    use_connection(monkeypatch, "microbase_default", sandbox.airflow_connection("microbase"))
    order_id = sandbox.app("hubspot").seed({"hs_external_order_id": "o-1"})
    sandbox.app("microbase").seed(id="m1", email="m1@example.com")
    run = run_dag(
        """
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_crm.operators.hubspot import HubSpotUpdateOrderOperator
    from airflow_provider_crm.operators.kustomer import KustomerCreateKObjectOperator
    from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator

    with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        HubSpotUpdateOrderOperator(task_id="hubspot", order_id="o-1", id_property="hs_external_order_id",
                                   properties={"hs_order_name": "x"})
        KustomerCreateKObjectOperator(task_id="kustomer", klass_name="ecomm-order", title="t")
        MicroBaseUpdateCustomerOperator(task_id="microbase", customer_id="m1", first_name="x")
    """
    )
    links = {
        ti.task_id: ti.xcom_pull(task_ids=ti.task_id, key="_link_CrmRecordLink") for ti in run.get_task_instances()
    }
    kobject_id = sandbox.state("kustomer").kobjects("ecomm-order")[0]["id"]
    assert links["hubspot"] == f"https://app.hubspot.com/contacts/4242/record/0-123/{order_id}"
    assert links["kustomer"] == f"https://acme.kustomerapp.com/app/klasses/ecomm-order/{kobject_id}"
    assert not links["microbase"], "MicroBase has no UI to link to"
