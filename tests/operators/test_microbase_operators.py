"""The MicroBase operator inside real Airflow (``dag.test()``) against the emulator."""

from __future__ import annotations

import pytest

from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import task_states, xcom_values

DAG_HEAD = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={"slug": "acme-corp", "shop_id": "HkhhuXESl"}):
"""


@pytest.fixture
def seeded(sandbox: Sandbox, microbase_conn: str) -> Sandbox:
    sandbox.app("microbase").seed(id="HkhhuXESl", email="john@example.com", first_name="John", tags=["VIP"])
    return sandbox


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
