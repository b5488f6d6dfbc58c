"""Deferrable Kustomer bulk operators: jobs submitted by the worker, waited for in the triggerer, collected after.

``dag.test()`` runs a deferred task's trigger in line, as the triggerer would, then resumes the task
with its event. What the sandbox received (its journal: who asked what, in which order) and holds
is what these tests check.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred

from airflow_provider_crm.bulk.submitted_jobs import SIDE_FILE_SUFFIX, STATE_KEY
from airflow_provider_crm.errors import CrmError
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator, KustomerBulkUpdateKObjectsOperator
from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.journal import JournalEntry
from airflow_provider_crm.triggers.kustomer_bulk import KustomerBulkJobTrigger
from tests.airflow_versions import (
    AIRFLOW_VERSION,
    defers_to_the_triggerer,
    requires_airflow_3_3,
    waits_in_the_worker_before_3_2_2,
)
from tests.bulk.test_kustomer_bulk_jobs import (
    BULK,
    KLASS,
    bulk_submits,
    creates,
    sent_per_external_id,
    stored_by_external_id,
)
from tests.helpers import read_jsonl, task_states, xcom_values
from tests.triggers.test_kustomer_bulk_trigger import first_event

TASK_STATE_STORE = AIRFLOW_VERSION.release[:2] >= (3, 3)
"""Whether tasks have a durable state store (where deferred runs keep their submitted jobs)."""

FAST = {"poll_interval": 0.05, "rate_limit": 0}

DAG = """
import pendulum
from pathlib import Path
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import OPERATOR


class CrashingOnce(OPERATOR):
    \"\"\"Dies once, at CRASH_AT (``defer``: after submitting, before deferring; ``execute_complete``: after
    the trigger fired, before collecting), as a worker lost there would.\"\"\"

    def crash_once(self):
        marker = Path(MARKER)
        if marker.exists():
            return
        marker.write_text("crashed")
        raise RuntimeError("worker lost")

    def defer(self, **kwargs):
        if CRASH_AT == "defer":
            self.crash_once()
        super().defer(**kwargs)

    def execute_complete(self, context, event):
        if CRASH_AT == "execute_complete":
            self.crash_once()
        return super().execute_complete(context, event)


with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    CrashingOnce(
        task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, poll_interval=0.05, rate_limit=0,
        retries=1, retry_delay=pendulum.duration(seconds=0), DEFERRABLE
    )
"""


def dag(
    records: list[dict[str, Any]],
    ledger: Path,
    *,
    crash_at: str = "",
    deferrable: str = "deferrable=True",
    operator: str = "KustomerBulkCreateKObjectsOperator",
) -> str:
    marker = ledger.with_suffix(".crashed")
    return (
        DAG.replace("OPERATOR", operator)
        .replace("RECORDS", repr(records))
        .replace("LEDGER", repr(str(ledger)))
        .replace("MARKER", repr(str(marker)))
        .replace("CRASH_AT", repr(crash_at))
        .replace("DEFERRABLE", deferrable)
    )


def job_polls(sandbox: Sandbox) -> list[JournalEntry]:
    """``GET /v1/bulk/{id}``: how a job's status is asked (its results are ``/batches``)."""
    return [
        e for e in sandbox.journal("kustomer") if e.method == "GET" and len(e.segments) == 3 and e.segments[1] == "bulk"
    ]


def result_reads(sandbox: Sandbox) -> list[JournalEntry]:
    return [e for e in sandbox.journal("kustomer") if e.method == "GET" and e.path.endswith("/batches")]


TRIGGER_RAN = "[DAG TEST] running trigger in line"
"""What ``dag.test()`` logs when a task deferred and it runs the trigger, as the triggerer would."""


def assert_waited_in_the_triggerer(sandbox: Sandbox, log: pytest.LogCaptureFixture) -> None:
    """Airflow ran the trigger; the journal shows every submit, then only status polls (the trigger's),
    then only result reads (the resumed worker's)."""
    assert log.text.count(TRIGGER_RAN) == 1, "the task deferred once"
    journal = sandbox.journal("kustomer")
    last_submit = max(e.seq for e in journal if e.path == BULK)
    first_read = min(e.seq for e in result_reads(sandbox))
    polls = job_polls(sandbox)
    assert polls, "the jobs were polled"
    assert all(last_submit < e.seq < first_read for e in polls), "polled only between the submits and the collecting"
    between = [e for e in journal if last_submit < e.seq < first_read]
    assert between == polls, "nothing but the trigger's polls while the task was deferred"


def assert_every_record_written_once(sandbox: Sandbox, ledger: Path, count: int) -> None:
    assert sent_per_external_id(sandbox) == Counter(f"order-{n}" for n in range(count)), "each record sent once"
    stored = stored_by_external_id(sandbox)
    assert len(stored) == count
    lines = read_jsonl(ledger)
    assert sorted(line["index"] for line in lines) == list(range(count)), "one ledger line per record"
    assert {line["key"]: line["remote_id"] for line in lines} == stored, "each line carries the new id"
    assert {(line["action"], line["status"]) for line in lines} == {("created", "ok")}


@pytest.fixture
def fast_jobs(sandbox: Sandbox, kustomer_conn: str) -> Sandbox:
    sandbox.kustomer.configure({"bulk_processing_seconds": 0.2})
    return sandbox


@defers_to_the_triggerer
def test_250_creates_defer_to_the_trigger_and_are_collected(
    run_dag: Any, fast_jobs: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag(creates(250), ledger))

    assert task_states(run) == {"sync": "success"}
    (ti,) = run.get_task_instances()  # type: ignore[attr-defined]
    assert ti.try_number == 1
    assert sorted(len(entry.body) for entry in bulk_submits(fast_jobs)) == [50, 100, 100]
    assert_waited_in_the_triggerer(fast_jobs, caplog)
    assert len(result_reads(fast_jobs)) >= 3, "each job's results read by the resumed task"
    assert_every_record_written_once(fast_jobs, ledger, 250)
    summary = xcom_values(run)["sync"]
    assert (summary["total"], summary["created"], summary["rejected"]) == (250, 250, 0)
    side_file = tmp_path / f"ledger.jsonl{SIDE_FILE_SUFFIX}"
    if TASK_STATE_STORE:
        assert not side_file.exists(), "jobs saved in the task state store"
    else:  # before Airflow 3.3 the jobs are kept next to the ledger, and forgotten once every record is settled
        assert STATE_KEY not in json.loads(side_file.read_text())


@defers_to_the_triggerer
def test_updates_defer_to_the_trigger_too(
    run_dag: Any, fast_jobs: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [fast_jobs.kustomer.seed(KLASS, {"title": f"Order {n}"})["id"] for n in range(120)]
    records = [{"id": kobject_id, "custom": {"syncNum": n}} for n, kobject_id in enumerate(ids)]
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag(records, ledger, operator="KustomerBulkUpdateKObjectsOperator"))

    assert task_states(run) == {"sync": "success"}
    assert_waited_in_the_triggerer(fast_jobs, caplog)
    submits = bulk_submits(fast_jobs, "PUT")
    assert Counter(item["id"] for entry in submits for item in entry.body) == Counter(ids), "each record sent once"
    state = fast_jobs.state("kustomer")
    assert all(state.get(KLASS, kobject_id)["custom"] == {"syncNum": n} for n, kobject_id in enumerate(ids))
    lines = read_jsonl(ledger)
    assert {line["key"]: (line["action"], line["remote_id"]) for line in lines} == {i: ("updated", i) for i in ids}


@defers_to_the_triggerer
def test_default_deferrable_from_the_airflow_config(
    run_dag: Any, fast_jobs: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert KustomerBulkCreateKObjectsOperator(task_id="t", klass_name=KLASS).deferrable is True
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag(creates(120), ledger, deferrable=""))

    assert task_states(run) == {"sync": "success"}
    assert_waited_in_the_triggerer(fast_jobs, caplog)
    assert_every_record_written_once(fast_jobs, ledger, 120)


def test_not_deferrable_by_default_the_worker_polls(
    run_dag: Any, fast_jobs: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    assert KustomerBulkCreateKObjectsOperator(task_id="t", klass_name=KLASS).deferrable is False
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag(creates(120), ledger, deferrable=""))

    assert task_states(run) == {"sync": "success"}
    assert caplog.text.count("[DAG TEST] starting task") == 1 and TRIGGER_RAN not in caplog.text, "never deferred"
    assert len(result_reads(fast_jobs)) >= 2, "the worker waited for both jobs by reading their batches"
    assert job_polls(fast_jobs) == [], "no status polls: the trigger's way of waiting never ran"
    assert_every_record_written_once(fast_jobs, ledger, 120)


@requires_airflow_3_3("context['task_state_store'] (where the submitted jobs are kept across tries)")
@pytest.mark.parametrize("crash_at", ["defer", "execute_complete"])
def test_a_retry_collects_the_saved_jobs_instead_of_submitting_again(
    run_dag: Any, fast_jobs: Sandbox, tmp_path: Path, crash_at: str
) -> None:
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag(creates(250), ledger, crash_at=crash_at))

    assert task_states(run) == {"sync": "success"}
    (ti,) = run.get_task_instances()  # type: ignore[attr-defined]
    assert ti.try_number == 2, f"try 1 died at {crash_at}, try 2 finished"
    assert len(bulk_submits(fast_jobs)) == 3, "the retry submitted nothing"
    assert_every_record_written_once(fast_jobs, ledger, 250)


# -- without Airflow: the side file, the events ------------------------------------------------------


def deferred(operator: KustomerBulkCreateKObjectsOperator) -> dict[str, Any]:
    """Run ``execute`` up to its deferral; the trigger's arguments."""
    with pytest.raises(TaskDeferred) as caught:
        operator.execute({})
    assert caught.value.method_name == "execute_complete"
    _, kwargs = caught.value.trigger.serialize()
    return kwargs


@defers_to_the_triggerer
def test_without_a_task_state_store_the_jobs_are_kept_beside_the_ledger(fast_jobs: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    operator = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(150), ledger_path=str(ledger), deferrable=True, **FAST
    )

    kwargs = deferred(operator)

    side_file = Path(f"{ledger}{SIDE_FILE_SUFFIX}")
    saved = json.loads(side_file.read_text())[STATE_KEY]
    assert [job_id for job_id, _ in saved["jobs"]] == kwargs["job_ids"]
    assert [ranges for _, ranges in saved["jobs"]] == [[[0, 99]], [[100, 149]]]
    again = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(150), ledger_path=str(ledger), deferrable=True, **FAST
    )
    assert deferred(again)["job_ids"] == kwargs["job_ids"], "a retry waits for the saved jobs"
    assert len(bulk_submits(fast_jobs)) == 2

    summary = again.execute_complete({}, first_event(again.job_trigger(kwargs["job_ids"])))

    assert summary["created"] == 150
    assert_every_record_written_once(fast_jobs, ledger, 150)
    assert json.loads(side_file.read_text()) == {}, "dropped once the ledger holds every record"


def test_without_anywhere_to_keep_the_jobs_the_worker_waits(fast_jobs: Sandbox) -> None:
    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(3), deferrable=True, **FAST
    ).execute({})

    assert summary["created"] == 3


@waits_in_the_worker_before_3_2_2
def test_before_airflow_3_2_2_a_deferrable_task_waits_in_the_worker_and_says_why(
    run_dag: Any,
    fast_jobs: Sandbox,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    ledger = tmp_path / "ledger.jsonl"

    run = run_dag(dag(creates(120), ledger))

    assert task_states(run) == {"sync": "success"}
    assert TRIGGER_RAN not in caplog.text, "never deferred"
    assert "waiting for the jobs in the worker instead" in "".join(capfd.readouterr())
    assert job_polls(fast_jobs) == [], "no trigger polled the jobs"
    assert_every_record_written_once(fast_jobs, ledger, 120)


def test_a_trigger_error_fails_the_task_with_its_message(fast_jobs: Sandbox, tmp_path: Path) -> None:
    operator = KustomerBulkUpdateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=[], ledger_path=str(tmp_path / "l.jsonl"), deferrable=True, **FAST
    )
    message = "Kustomer bulk job 'j1': lacks org.permission.bulk.read"
    event = {"status": "error", "reason": "permission", "message": message}

    with pytest.raises(CrmError, match=re.escape(message)):
        operator.execute_complete({}, event)


@defers_to_the_triggerer
def test_a_job_past_the_deadline_is_settled_by_lookup(sandbox: Sandbox, kustomer_conn: str, tmp_path: Path) -> None:
    """Jobs still queued at the trigger's deadline: each record is looked up; not there yet, it is owed."""
    from airflow_provider_crm.bulk.policy import BulkRejectedError

    sandbox.kustomer.configure({"bulk_processing_seconds": 600})
    ledger = tmp_path / "ledger.jsonl"
    operator = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, records=creates(3), ledger_path=str(ledger), deferrable=True, **FAST
    )
    kwargs = deferred(operator)
    event = first_event(KustomerBulkJobTrigger(**{**kwargs, "deadline": 0}))
    assert event["reason"] == "timeout"

    with pytest.raises(BulkRejectedError, match="every record was rejected"):
        operator.execute_complete({}, event)

    assert len(bulk_submits(sandbox)) == 1
    lines = read_jsonl(ledger)
    assert {(line["status"], line["error_code"]) for line in lines} == {("retry", "not_written")}
    assert all("does not hold it" in line["error_message"] for line in lines)
