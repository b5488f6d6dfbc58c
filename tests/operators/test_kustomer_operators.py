"""Kustomer operators inside real Airflow (``dag.test()`` on SQLite) against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_crm._compat import redact
from airflow_provider_crm.sandbox import Sandbox
from tests.airflow_versions import DAG_TEST_OUTPUT_IS_MASKED
from tests.helpers import task_states, xcom_values
from tests.operators.conftest import dag_source
from tests.security.task_logs import read_log_files, task_log_file

KLASS = "ecomm-order"

OPERATORS = (
    "from airflow_provider_crm.operators.kustomer import KustomerCreateKObjectOperator, KustomerUpdateKObjectOperator"
)

CHAIN = dag_source(
    """
    create = KustomerCreateKObjectOperator(
        task_id="create",
        klass_name="ecomm-order",
        title="Order {{ dag.dag_id }}",
        external_id="ext-{{ dag.dag_id }}",
        custom={"totalNum": 12, "placedAt": "{{ logical_date.isoformat() }}"},
    )
    update = KustomerUpdateKObjectOperator(
        task_id="update",
        klass_name="ecomm-order",
        kobject_id="{{ ti.xcom_pull(task_ids='create') }}",
        custom={"statusStr": "shipped"},
    )
    create >> update
    """,
    OPERATORS,
)


def test_create_then_update_through_xcom(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    run = run_dag(CHAIN, dag_id="kustomer_chain")
    assert task_states(run) == {"create": "success", "update": "success"}
    ids = xcom_values(run)
    [record] = sandbox.state("kustomer").kobjects(KLASS)
    assert ids == {"create": record["id"], "update": record["id"]}
    assert record["title"] == "Order kustomer_chain"
    assert record["externalId"] == "ext-kustomer_chain"
    assert record["custom"]["totalNum"] == 12
    assert record["custom"]["statusStr"] == "shipped"
    assert record["custom"]["placedAt"].endswith("+00:00")
    update = [e for e in sandbox.writes("kustomer") if e.method == "PUT"]
    assert update[0].body == {"custom": {"statusStr": "shipped"}}


def test_bad_custom_attribute_fails_the_task_and_sends_nothing(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    source = CHAIN.replace('"totalNum": 12', '"totalNum": "twelve"')
    run = run_dag(source)
    assert task_states(run) == {"create": "failed", "update": "upstream_failed"}
    assert sandbox.journal("kustomer") == []


def test_partial_expand_maps_creates_and_updates(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    body = """
    created = KustomerCreateKObjectOperator.partial(
        task_id="create", klass_name="ecomm-order", title="Order {{ ti.map_index }}"
    ).expand(external_id=["a", "b", "c"])
    KustomerUpdateKObjectOperator.partial(
        task_id="update", klass_name="ecomm-order", custom={"doneBool": True}
    ).expand(kobject_id=created.output)
    """
    source = dag_source(body, OPERATORS)
    run = run_dag(source)
    records = sandbox.state("kustomer").kobjects(KLASS)
    assert sorted(r["externalId"] for r in records) == ["a", "b", "c"]
    assert sorted(r["title"] for r in records) == ["Order 0", "Order 1", "Order 2"]
    assert all(r["custom"] == {"doneBool": True} for r in records)
    tis = run.get_task_instances()  # type: ignore[attr-defined]
    assert sorted(ti.task_id for ti in tis if ti.state == "success") == ["create"] * 3 + ["update"] * 3


def test_token_never_reaches_logs_xcom_or_rendered_fields(
    run_dag, kustomer_conn: str, sandbox: Sandbox, capfd: pytest.CaptureFixture[str], airflow_db: Path
) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    token = sandbox.token("kustomer")
    # A DAG author templating the secret into a payload: rendered fields must still mask it.
    source = CHAIN.replace('"totalNum": 12', '"totalNum": 12, "noteStr": "{{ conn.kustomer_default.password }}"')
    with task_log_file(airflow_db / "logs") as task_log:
        run_ok = run_dag(source)
        run_bad = run_dag(source.replace('"totalNum": 12,', '"totalNum": "bad",'))
    assert task_states(run_ok)["update"] == "success"
    assert task_states(run_bad)["create"] == "failed"
    assert sandbox.state("kustomer").kobjects(KLASS)[0]["custom"]["noteStr"] == token, "the template rendered"

    out, err = capfd.readouterr()
    assert "Kustomer KObject" in out + err, "task logs were captured"
    if DAG_TEST_OUTPUT_IS_MASKED:
        assert token not in out + err
    else:  # Airflow 3.0's dag.test() prints secrets itself (see DAG_TEST_OUTPUT_IS_MASKED)
        assert redact(token) == "***"
    logs = read_log_files(airflow_db / "logs")
    task_log.unlink()
    assert str(task_log) in logs, "the task logs were written to a file"
    assert "Kustomer KObject" in logs[str(task_log)] and "totalNum" in logs[str(task_log)], "with both runs' tasks"
    if DAG_TEST_OUTPUT_IS_MASKED:
        for path, text in logs.items():
            assert token not in text, path
    for run in (run_ok, run_bad):
        assert token not in repr(xcom_values(run))
        for ti in run.get_task_instances():  # type: ignore[attr-defined]
            rendered = RenderedTaskInstanceFields.get_templated_fields(ti)
            assert token not in repr(rendered)
        assert "***" in repr(RenderedTaskInstanceFields.get_templated_fields(run.get_task_instances()[0]))
