"""Kaiten and MicroBase operators inside real Airflow (``dag.test()``) against the emulators."""

from __future__ import annotations

import pytest

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator
from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import task_states, xcom_values

DAG_HEAD = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={"slug": "acme-corp", "shop_id": "HkhhuXESl"}):
"""


@pytest.fixture
def seeded(sandbox: Sandbox, kaiten_conn: str, microbase_conn: str) -> Sandbox:
    sandbox.app("kaiten").seed("acme-corp", "Acme", external_customer_id="crm-1", domain="acme.com")
    sandbox.app("microbase").seed(id="HkhhuXESl", email="john@example.com", first_name="John", tags=["VIP"])
    return sandbox


def test_kaiten_update_keeps_unset_fields_and_clears_on_request(run_dag, seeded: Sandbox) -> None:
    run = run_dag(
        DAG_HEAD
        + """
    rename = KaitenUpdateCustomerOperator(
        task_id="rename", customer_slug="{{ params.slug }}", name="Acme Inc"
    )
    unlink = KaitenUpdateCustomerOperator(
        task_id="unlink", customer_slug="{{ ti.xcom_pull(task_ids='rename') }}", clear_fields=["domain"]
    )
    rename >> unlink
"""
    )
    assert xcom_values(run) == {"rename": "acme-corp", "unlink": "acme-corp"}
    stored = seeded.state("kaiten").get("acme-corp")
    assert stored["name"] == "Acme Inc"
    assert stored["externalCustomerId"] == "crm-1", "a field left unset survives the full-replacement PUT"
    assert stored["domain"] is None, "clear_fields clears"
    bodies = [e.body for e in seeded.writes("kaiten")]
    assert bodies == [
        {"name": "Acme Inc", "externalCustomerId": "crm-1", "domain": "acme.com"},
        {"name": "Acme Inc", "externalCustomerId": "crm-1"},
    ]


def test_microbase_update_returns_the_id(run_dag, seeded: Sandbox) -> None:
    run = run_dag(
        DAG_HEAD
        + """
    MicroBaseUpdateCustomerOperator(
        task_id="update", customer_id="{{ params.shop_id }}", customer_email="j.doe@example.com",
        status="INACTIVE", tags=["churned", "{{ params.slug }}"],
    )
"""
    )
    assert xcom_values(run) == {"update": "HkhhuXESl"}
    stored = seeded.state("microbase").get("HkhhuXESl")
    assert (stored["email"], stored["status"], stored["tags"]) == (
        "j.doe@example.com",
        "INACTIVE",
        ["churned", "acme-corp"],
    )
    assert stored["firstName"] == "John"


def test_microbase_business_error_fails_the_task_once(run_dag, seeded: Sandbox) -> None:
    run = run_dag(
        DAG_HEAD
        + """
    MicroBaseUpdateCustomerOperator(task_id="update", customer_id="no-such-customer", first_name="X")
"""
    )
    assert task_states(run) == {"update": "failed"}
    [entry] = [e for e in seeded.journal("microbase") if e.path.endswith("customer.update")]
    assert entry.response_body["error"] == "customer_not_found"


def test_alert_email_default_args_never_reach_microbase(run_dag, seeded: Sandbox) -> None:
    source = (
        DAG_HEAD.replace('params={"slug"', 'default_args={"email": ["oncall@example.com"]}, params={"slug"')
        + """
    MicroBaseUpdateCustomerOperator(task_id="update", customer_id="{{ params.shop_id }}", first_name="Jo")
"""
    )
    run = run_dag(source)
    assert task_states(run) == {"update": "success"}
    assert seeded.state("microbase").get("HkhhuXESl")["email"] == "john@example.com"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "nothing to update"),
        ({"clear_fields": ["name"]}, "clear_fields may name"),
        ({"domain": "acme.io", "clear_fields": ["domain"]}, "both given and listed"),
    ],
)
def test_kaiten_operator_refuses_unclear_requests(kwargs: dict, fragment: str) -> None:
    operator = KaitenUpdateCustomerOperator(task_id="t", customer_slug="acme-corp", **kwargs)
    with pytest.raises(CrmValidationError, match=fragment):
        operator.changes()


def test_operators_are_mappable() -> None:
    import pendulum
    from airflow.sdk import DAG

    with DAG("mappable", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        kaiten = KaitenUpdateCustomerOperator.partial(task_id="k", name="X").expand(customer_slug=["a-1", "b-2"])
        shop = MicroBaseUpdateCustomerOperator.partial(task_id="m", status="ACTIVE").expand(customer_id=["1", "2"])
    assert kaiten.expand_input.value == {"customer_slug": ["a-1", "b-2"]}  # type: ignore[attr-defined]
    assert shop.expand_input.value == {"customer_id": ["1", "2"]}  # type: ignore[attr-defined]


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
