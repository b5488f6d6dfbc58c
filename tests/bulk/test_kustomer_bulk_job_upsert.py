"""The Kustomer bulk upsert through bulk jobs: new external ids as bulk creates, known ones as bulk updates by id.

What the sandbox received (its journal, counted per record) and holds is what these tests check.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.sandbox import DropAfterStore, Sandbox
from tests.bulk.test_kustomer_bulk_jobs import BULK, bulk_submits, sent_per_external_id, stored_by_external_id
from tests.helpers import read_jsonl, task_states, xcom_values

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkUpsertKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KustomerBulkUpsertKObjectsOperator(
        task_id="sync", klass_name="orders", records=RECORDS, ledger_path=LEDGER, poll_interval=0.05, rate_limit=0,
        deferrable=DEFERRABLE,
    )
"""


def dag(records: list[dict[str, Any]], ledger: Path, *, deferrable: bool = False) -> str:
    source = DAG.replace("RECORDS", repr(records)).replace("LEDGER", repr(str(ledger)))
    return source.replace("DEFERRABLE", repr(deferrable))


def orders(count: int, *, changed: range = range(0), factor: float = 1.0) -> list[dict[str, Any]]:
    """``count`` orders; those in ``changed`` carry a total ``factor`` times the first run's."""
    totals = [(n + 1) * (factor if n in changed else 1) for n in range(count)]
    return [{"external_id": f"o-{n}", "title": f"Order {n}", "custom": {"totalNum": totals[n]}} for n in range(count)]


def lookups(sandbox: Sandbox, since: int = 0) -> Counter[str]:
    """How many times the client looked each external id up."""
    prefix = "externalId="
    entries = sandbox.journal("kustomer")[since:]
    return Counter(e.segments[-1].removeprefix(prefix) for e in entries if e.segments[-1].startswith(prefix))


def bulk_updates(sandbox: Sandbox, since: int = 0) -> list[dict[str, Any]]:
    """Every item the client sent in a bulk update."""
    entries = sandbox.journal("kustomer")[since:]
    return [item for e in entries if e.method == "PUT" and e.path == BULK for item in e.body]


def single_writes(sandbox: Sandbox, since: int = 0) -> list[str]:
    return [f"{e.method} {e.path}" for e in sandbox.writes("kustomer")[since:] if e.path != BULK]


def test_a_nightly_sync_creates_new_records_and_updates_only_the_changed_ones_in_bulk(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path
) -> None:
    first = run_dag(dag(orders(120), tmp_path / "first.jsonl"))
    assert task_states(first) == {"sync": "success"}
    assert {line["action"] for line in read_jsonl(tmp_path / "first.jsonl")} == {"created"}
    assert len(bulk_submits(sandbox)) == 2, "120 records in two bulk creates"
    assert not lookups(sandbox) and not single_writes(sandbox), "nothing looked up or written one by one"
    ids = stored_by_external_id(sandbox)
    assert len(ids) == 120

    mark, writes_mark = len(sandbox.journal("kustomer")), len(sandbox.writes("kustomer"))
    second = run_dag(dag(orders(125, changed=range(10), factor=3), tmp_path / "second.jsonl"))

    assert task_states(second) == {"sync": "success"}
    actions = {line["key"]: line["action"] for line in read_jsonl(tmp_path / "second.jsonl")}
    expected = {f"o-{n}": "updated" if n < 10 else "unchanged" if n < 120 else "created" for n in range(125)}
    assert actions == expected
    summary = xcom_values(second)["sync"]
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (5, 10, 110)
    held = stored_by_external_id(sandbox)
    assert len(held) == 125 and all(held[key] == ids[key] for key in ids), "known records kept their objects"
    totals = {o["externalId"]: o["custom"]["totalNum"] for o in sandbox.state("kustomer").kobjects("orders")}
    assert totals == {f"o-{n}": (n + 1) * (3 if n < 10 else 1) for n in range(125)}
    # What the client sent: each record once in a bulk create, a lookup only for the ones Kustomer refused
    # (the known ones), a bulk update only for those that differ, nothing one by one.
    assert sent_per_external_id(sandbox) - Counter(ids.keys()) == Counter(f"o-{n}" for n in range(125))
    assert lookups(sandbox, mark) == Counter(f"o-{n}" for n in range(120))
    assert sorted(item["id"] for item in bulk_updates(sandbox, mark)) == sorted(ids[f"o-{n}"] for n in range(10))
    assert single_writes(sandbox, writes_mark) == []


@pytest.mark.parametrize("job_done_before_lookup", [True, False], ids=["job-done", "job-queued"])
def test_a_lost_submit_writes_every_record_once(
    run_dag: Any,
    sandbox: Sandbox,
    kustomer_conn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    job_done_before_lookup: bool,
) -> None:
    """The connection drops after Kustomer stored the bulk create. Records it holds by the lookup are not
    sent again; the others are, and a second copy of an external id is refused and settled by lookup."""
    from tests.bulk.test_kustomer_bulk_jobs import frozen_until_second_submit

    if job_done_before_lookup:
        sandbox.kustomer.configure({"bulk_processing_seconds": 0})
    else:
        monkeypatch.setattr(sandbox.kustomer, "monotonic_clock", frozen_until_second_submit(sandbox))
    sandbox.inject("kustomer", DropAfterStore(method="POST", path_pattern="/bulk$"))

    run = run_dag(dag(orders(60), tmp_path / "ledger.jsonl"))

    assert task_states(run) == {"sync": "success"}
    stored = stored_by_external_id(sandbox)
    assert len(stored) == 60, "each record held exactly once"
    once = Counter(f"o-{n}" for n in range(60))
    assert sent_per_external_id(sandbox) == (once if job_done_before_lookup else once + once)
    assert bulk_updates(sandbox) == [], "the values were written by the create: nothing to update"
    lines = read_jsonl(tmp_path / "ledger.jsonl")
    assert {line["key"]: line["remote_id"] for line in lines} == stored
    assert {line["action"] for line in lines} == ({"created"} if job_done_before_lookup else {"unchanged"})


def test_deferrable_upsert_waits_in_the_worker_and_says_so(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sandbox.kustomer.seed("orders", {"title": "Order 1", "externalId": "o-1", "custom": {"totalNum": 0}})

    run = run_dag(dag(orders(3), tmp_path / "ledger.jsonl", deferrable=True))

    assert task_states(run) == {"sync": "success"}
    assert "waiting for its jobs in the worker" in "".join(capfd.readouterr())
    status_polls = [e for e in sandbox.journal("kustomer") if e.method == "GET" and e.segments[-2] == "bulk"]
    assert status_polls == [], "no trigger polled the jobs: the worker read their batches"
    actions = {line["key"]: line["action"] for line in read_jsonl(tmp_path / "ledger.jsonl")}
    assert actions == {"o-0": "created", "o-1": "updated", "o-2": "created"}
    assert {o["externalId"]: o["custom"]["totalNum"] for o in sandbox.state("kustomer").kobjects("orders")} == {
        "o-0": 1,
        "o-1": 2,
        "o-2": 3,
    }
