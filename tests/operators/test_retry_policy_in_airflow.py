"""The retry policy inside real Airflow 3.3: permanent errors fail on the first try despite retries.

Before 3.3 ``crm_retry_kwargs()`` adds nothing and the task's own ``retries`` apply.
"""

from __future__ import annotations

from airflow_provider_crm.sandbox import Sandbox, ServerError
from tests.airflow_versions import requires_airflow_3_3
from tests.conftest import use_connection
from tests.helpers import task_states

RETRYING_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator
from airflow_provider_crm.operators.kustomer import KustomerUpdateKObjectOperator
from airflow_provider_crm.retry_policy import crm_retry_kwargs

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         default_args={"retries": 3, "retry_delay": pendulum.duration(seconds=0), **crm_retry_kwargs()}):
    TASK
"""
"""One task, retried three times at once unless ``crm_retry_kwargs()`` says the error is permanent."""

DAG = RETRYING_DAG.replace(
    "TASK", 'KustomerUpdateKObjectOperator(task_id="update", klass_name="orders", kobject_id=KOBJECT_ID, title="new")'
)
BULK_DAG = RETRYING_DAG.replace(
    "TASK",
    'KustomerBulkCreateKObjectsOperator(task_id="push", klass_name="orders", records=RECORDS, on_record_error="warn")',
)


@requires_airflow_3_3("retry_policy (failing a permanent error without using the task's retries)")
def test_not_found_fails_at_once(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    run = run_dag(DAG.replace("KOBJECT_ID", repr("0" * 24)))
    assert task_states(run) == {"update": "failed"}
    [ti] = run.get_task_instances()  # type: ignore[attr-defined]
    assert ti.try_number == 1, "no retry for a 404"
    assert len(sandbox.writes("kustomer")) == 1


def test_transient_failure_is_retried_by_the_task(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    kobject = sandbox.kustomer.seed("orders", {"title": "old"})
    sandbox.inject("kustomer", ServerError(status=503, count=5))  # outlasts the hook's 5 attempts once
    run = run_dag(DAG.replace("KOBJECT_ID", repr(kobject["id"])))
    assert task_states(run) == {"update": "success"}
    [ti] = run.get_task_instances()  # type: ignore[attr-defined]
    assert ti.try_number == 2
    assert sandbox.state("kustomer").get("orders", kobject["id"])["title"] == "new"


@requires_airflow_3_3("retry_policy (failing a permanent error without using the task's retries)")
def test_bulk_records_refused_by_validation_fail_at_once(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    records = [{"external_id": f"r-{i}", "title": "t", "custom": {"totalNum": "n/a"}} for i in range(5)]
    run = run_dag(BULK_DAG.replace("RECORDS", repr(records)))
    assert task_states(run) == {"push": "failed"}
    [ti] = run.get_task_instances()  # type: ignore[attr-defined]
    assert ti.try_number == 1, "no retry: every record was refused for good"
    assert sandbox.writes("kustomer") == []


@requires_airflow_3_3("retry_policy (failing a permanent error without using the task's retries)")
def test_bulk_records_refused_by_an_outage_are_retried(run_dag, sandbox: Sandbox, monkeypatch) -> None:
    connection = sandbox.airflow_connection("kustomer") | {"extra": {"max_attempts": 1}}
    use_connection(monkeypatch, "kustomer_default", connection)  # a 503 reaches the runner at once
    sandbox.inject("kustomer", ServerError(status=503, method="POST", count=5))
    records = [{"external_id": f"r-{i}", "title": "t"} for i in range(5)]
    run = run_dag(BULK_DAG.replace("RECORDS", repr(records)))
    assert task_states(run) == {"push": "success"}
    [ti] = run.get_task_instances()  # type: ignore[attr-defined]
    assert ti.try_number == 2, "the policy left the 503s to the task's retries, which wrote them"
    kobjects = sandbox.state("kustomer").kobjects("orders")
    assert sorted(o["externalId"] for o in kobjects) == [r["external_id"] for r in records]
