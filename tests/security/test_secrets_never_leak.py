"""Run every operator, on success and failure paths, and scan all that Airflow and we produced.

Scanned for every token, OAuth client secret, refresh token and issued access token: task logs
(captured output and the log files, with the run's task logs written to one), XCom values,
rendered template fields, exception text in the logs, and the ledger and dead-letter files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_crm._compat import redact
from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.example_data import seed_example
from tests.airflow_versions import DAG_TEST_OUTPUT_IS_MASKED
from tests.conftest import use_connection
from tests.helpers import task_states, xcom_values
from tests.security.task_logs import read_log_files, task_log_file

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import (
    HubSpotBulkUpsertOrdersOperator, KaitenBulkUpdateCustomersOperator, KustomerBulkCreateKObjectsOperator,
    MicroBaseBulkUpdateCustomersOperator,
)
from airflow_provider_crm.operators.hubspot import HubSpotUpdateOrderOperator
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.operators.kustomer import KustomerCreateKObjectOperator, KustomerUpdateKObjectOperator
from airflow_provider_crm.operators.microbase import MicroBaseUpdateCustomerOperator

OUT = OUTPUT_DIR
with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    # success paths
    create = KustomerCreateKObjectOperator(task_id="k_create", klass_name="orders", title="t", external_id="e-1")
    KustomerUpdateKObjectOperator(task_id="k_update", klass_name="orders", kobject_id=create.output, title="u")
    KaitenUpdateCustomerOperator(task_id="kt_update", customer_slug="acme-corp", name="Acme 2")
    MicroBaseUpdateCustomerOperator(task_id="mb_update", customer_id="HkhhuXESl", first_name="Jo")
    HubSpotUpdateOrderOperator(task_id="hs_update", order_id="order-1042", id_property="hs_external_order_id",
                               properties={"hs_order_name": "x"})
    KustomerBulkCreateKObjectsOperator(task_id="k_bulk", klass_name="orders", on_record_error="skip",
        max_reject_ratio=0.9, ledger_path=OUT + "/k.jsonl", dead_letter_path=OUT + "/k-dead.jsonl",
        records=[{"external_id": "b-1", "title": "ok"},
                 {"external_id": "b-2", "title": "bad", "custom": {"xNum": "no"}}])
    KaitenBulkUpdateCustomersOperator(task_id="kt_bulk", on_record_error="skip", max_reject_ratio=0.9,
        ledger_path=OUT + "/kt.jsonl", dead_letter_path=OUT + "/kt-dead.jsonl",
        records=[{"slug": "acme-corp", "domain": "acme.io"}, {"slug": "missing-co", "name": "x"}])
    MicroBaseBulkUpdateCustomersOperator(task_id="mb_bulk", on_record_error="skip", max_reject_ratio=0.9,
        ledger_path=OUT + "/mb.jsonl", dead_letter_path=OUT + "/mb-dead.jsonl",
        records=[{"id": "HkhhuXESl", "last_name": "D"}, {"id": "nobody", "last_name": "x"}])
    HubSpotBulkUpsertOrdersOperator(task_id="hs_bulk", id_property="hs_external_order_id", on_record_error="skip",
        max_reject_ratio=0.9, ledger_path=OUT + "/hs.jsonl", dead_letter_path=OUT + "/hs-dead.jsonl",
        records=[{"id": "n-1", "properties": {"hs_order_name": "y"}}, {"id": "n-2", "properties": {"nope": "z"}}])
    # failure paths, including a secret templated into a payload
    KustomerCreateKObjectOperator(task_id="k_fail", klass_name="orders", title="{{ conn.kustomer_default.password }}",
                                  custom={"badKey": "{{ conn.hubspot_default.extra_dejson.client_secret }}"})
    KaitenUpdateCustomerOperator(task_id="kt_fail", customer_slug="missing-co", name="x")
    MicroBaseUpdateCustomerOperator(task_id="mb_fail", customer_id="nobody", first_name="x")
    HubSpotUpdateOrderOperator(task_id="hs_fail", order_id="404404", properties={"hs_order_name": "x"})
"""


@pytest.fixture
def oauth_everywhere(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Connections for all four vendors, MicroBase and HubSpot with OAuth; returns every secret."""
    seed_example(sandbox)
    microbase, hubspot = sandbox.app("microbase"), sandbox.app("hubspot")
    use_connection(monkeypatch, "kustomer_default", sandbox.airflow_connection("kustomer"))
    use_connection(monkeypatch, "kaiten_default", sandbox.airflow_connection("kaiten"))
    use_connection(
        monkeypatch,
        "microbase_default",
        {
            "conn_type": "microbase",
            "host": sandbox.base_url("microbase"),
            "login": microbase.client_id,
            "password": microbase.client_secret,
            "extra": {"token_url": "/services/oauth/v2/token"},
        },
    )
    use_connection(
        monkeypatch,
        "hubspot_default",
        {
            "conn_type": "hubspot",
            "host": sandbox.base_url("hubspot"),
            "extra": {
                "client_id": hubspot.client_id,
                "client_secret": hubspot.client_secret,
                "refresh_token": hubspot.refresh_token,
            },
        },
    )
    return [
        sandbox.token("kustomer"),
        sandbox.token("kaiten"),
        microbase.client_secret,
        hubspot.client_secret,
        hubspot.refresh_token,
    ]


def issued_tokens(sandbox: Sandbox) -> list[str]:
    return [*sandbox.state("microbase").issued_tokens(), *sandbox.state("hubspot").issued_tokens()]


def test_no_secret_appears_anywhere(
    run_dag, sandbox: Sandbox, oauth_everywhere: list[str], tmp_path: Path, airflow_db: Path, capfd
) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    with task_log_file(airflow_db / "logs") as task_log:
        run = run_dag(DAG.replace("OUTPUT_DIR", repr(str(tmp_path))))
    states = task_states(run)
    assert {k: v for k, v in states.items() if k.endswith("_fail")} == dict.fromkeys(
        ("k_fail", "kt_fail", "mb_fail", "hs_fail"), "failed"
    )
    assert {v for k, v in states.items() if not k.endswith("_fail")} == {"success"}
    secrets = oauth_everywhere + issued_tokens(sandbox)
    assert len(issued_tokens(sandbox)) >= 2, "OAuth tokens were really issued and used"

    out, err = capfd.readouterr()
    assert "Kaiten" in out + err, "the failing tasks' errors were captured"
    logs = read_log_files(airflow_db / "logs")
    task_log.unlink()
    assert str(task_log) in logs, "the task logs were written to a file"
    for expected in ("Kaiten", "Kustomer KObject", "HubSpot", "MicroBase", "rejected"):
        assert expected in logs[str(task_log)], f"the task log file has no {expected!r} lines"
    produced: dict[str, str] = {}
    if DAG_TEST_OUTPUT_IS_MASKED:
        produced.update(logs)
        produced["captured output"] = out + err
    else:  # Airflow 3.0's dag.test() prints secrets itself (see DAG_TEST_OUTPUT_IS_MASKED)
        assert [redact(secret) for secret in secrets] == ["***"] * len(secrets), "every secret is masked"
    produced["xcom"] = json.dumps(xcom_values(run), default=str)
    for ti in run.get_task_instances():  # type: ignore[attr-defined]
        produced[f"rendered {ti.task_id}"] = json.dumps(
            RenderedTaskInstanceFields.get_templated_fields(ti), default=str
        )
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 8 and all(f.read_text().count("\n") >= 1 for f in files), "ledgers and dead letters"
    for path in files:
        produced[str(path)] = path.read_text()

    for secret in secrets:
        for where, text in produced.items():
            assert secret not in text, f"a secret leaked into {where}"
    assert "***" in produced["rendered k_fail"], "the templated secret was rendered masked"
