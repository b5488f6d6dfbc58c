"""The Kaiten operator inside real Airflow (``dag.test()``) against the emulator."""

from __future__ import annotations

import pytest

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator
from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import xcom_values

DAG_HEAD = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={"slug": "acme-corp"}):
"""


@pytest.fixture
def seeded(sandbox: Sandbox, kaiten_conn: str) -> Sandbox:
    sandbox.app("kaiten").seed("acme-corp", "Acme", external_customer_id="crm-1", domain="acme.com")
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
