"""Kustomer upsert operators inside real Airflow (``dag.test()``) against the sandbox."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.sandbox import HttpStatus, Sandbox
from tests.helpers import read_jsonl, task_states, xcom_values
from tests.operators.conftest import dag_source

KLASS = "ecomm-order"
N = 20

SINGLE = dag_source(
    """
    KustomerUpsertKObjectOperator(
        task_id="upsert",
        klass_name="{{ 'ecomm-order' }}",
        external_id="order-{{ 1042 }}",
        title="Order 1042",
        custom={"totalNum": TOTAL, "statusStr": "{{ 'placed' }}"},
    )
    """,
    "from airflow_provider_crm.operators.kustomer import KustomerUpsertKObjectOperator",
)


def orders(factor: float, n: int = N) -> list[dict[str, Any]]:
    return [
        {"external_id": f"o-{i}", "title": f"Order {i}", "custom": {"totalNum": (i + 1) * factor}} for i in range(n)
    ]


def bulk_dag(records: list[dict[str, Any]], ledger: Path, *, dry_run: bool = False, mode: str | None = None) -> str:
    """A DAG that upserts ``records`` in one bulk task (``sync``), skipping bad records."""
    arguments = {} if mode is None else {"mode": mode}
    arguments |= {
        "klass_name": KLASS,
        "records": records,
        "ledger_path": str(ledger),
        "on_record_error": "skip",
        "max_reject_ratio": 0.5,
        "dry_run": dry_run,
        "max_workers": 4,
    }
    return dag_source(
        f'KustomerBulkUpsertKObjectsOperator(task_id="sync", **{arguments!r})',
        "from airflow_provider_crm.operators.bulk import KustomerBulkUpsertKObjectsOperator",
    )


def ledger_actions(path: Path) -> dict[str, str]:
    return {line["key"]: line["action"] for line in read_jsonl(path)}


def requests_per_record(sandbox: Sandbox, since: int) -> dict[str, list[str]]:
    """Each external id's requests after the ``since``-th, as ``GET``/``POST``/``PUT`` in arrival order."""
    owner = {o["id"]: o["externalId"] for o in sandbox.state("kustomer").kobjects(KLASS)}
    seen: dict[str, list[str]] = defaultdict(list)
    for entry in sandbox.journal("kustomer")[since:]:
        last = entry.segments[-1]
        if entry.method == "GET" and last.startswith("externalId="):
            seen[last.removeprefix("externalId=")].append("GET")
        elif entry.method == "POST":
            seen[entry.body["externalId"]].append("POST")
        else:
            seen[owner.get(last, last)].append(entry.method)
    return dict(seen)


def test_single_upsert_creates_then_updates(run_dag, kustomer_conn: str, sandbox: Sandbox) -> None:
    first = run_dag(SINGLE.replace("TOTAL", "10"))
    assert task_states(first) == {"upsert": "success"}
    [record] = sandbox.state("kustomer").kobjects(KLASS)
    assert xcom_values(first) == {"upsert": record["id"]}
    [ti] = first.get_task_instances()  # type: ignore[attr-defined]
    assert ti.xcom_pull(task_ids="upsert", key="action") == "created"
    assert [e.method for e in sandbox.journal("kustomer")] == ["GET", "POST"]

    mark = len(sandbox.journal("kustomer"))
    second = run_dag(SINGLE.replace("TOTAL", "12"))
    assert task_states(second) == {"upsert": "success"}
    [record] = sandbox.state("kustomer").kobjects(KLASS)
    assert record["custom"] == {"totalNum": 12, "statusStr": "placed"}
    assert xcom_values(second) == {"upsert": record["id"]}
    [ti] = second.get_task_instances()  # type: ignore[attr-defined]
    assert ti.xcom_pull(task_ids="upsert", key="action") == "updated"
    assert [e.method for e in sandbox.journal("kustomer")[mark:]] == ["GET", "PUT"], "no second create"


def test_bulk_rerun_updates_changed_records_with_two_requests_each(
    run_dag, kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run_dag(bulk_dag(orders(1), tmp_path / "first.jsonl", mode="per_record"))
    assert task_states(first) == {"sync": "success"}
    assert set(ledger_actions(tmp_path / "first.jsonl").values()) == {"created"}
    assert xcom_values(first)["sync"]["created"] == N
    ids = {o["externalId"]: o["id"] for o in sandbox.state("kustomer").kobjects(KLASS)}
    assert len(ids) == N

    mark = len(sandbox.journal("kustomer"))
    second = run_dag(bulk_dag(orders(2.5), tmp_path / "second.jsonl", mode="per_record"))
    assert task_states(second) == {"sync": "success"}
    assert ledger_actions(tmp_path / "second.jsonl") == {f"o-{i}": "updated" for i in range(N)}
    summary = xcom_values(second)["sync"]
    assert (summary["updated"], summary["created"], summary["unchanged"]) == (N, 0, 0)
    assert summary["ids"] == ids, "the same objects, updated in place"
    held = {o["externalId"]: o["custom"]["totalNum"] for o in sandbox.state("kustomer").kobjects(KLASS)}
    assert held == {f"o-{i}": (i + 1) * 2.5 for i in range(N)}
    per_record = requests_per_record(sandbox, mark)
    assert per_record == {f"o-{i}": ["GET", "PUT"] for i in range(N)}, "a lookup and a PUT per record, no POST"
    assert len(sandbox.journal("kustomer")) - mark == 2 * N

    mark = len(sandbox.journal("kustomer"))
    third = run_dag(bulk_dag(orders(2.5), tmp_path / "third.jsonl", mode="per_record"))
    assert set(ledger_actions(tmp_path / "third.jsonl").values()) == {"unchanged"}
    assert xcom_values(third)["sync"]["unchanged"] == N
    assert requests_per_record(sandbox, mark) == {f"o-{i}": ["GET"] for i in range(N)}, "nothing to write"


def test_bulk_record_created_meanwhile_ends_as_one_updated_object(
    run_dag, kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.kustomer.seed(KLASS, {"title": "theirs", "externalId": "o-3", "custom": {"totalNum": -1}})
    # o-3's lookup answers as it would have just before the other writer's create landed.
    sandbox.inject("kustomer", HttpStatus(status=404, method="GET", path_pattern="externalId=o-3$"))
    run = run_dag(bulk_dag(orders(1, n=5), tmp_path / "ledger.jsonl", mode="per_record"))
    assert task_states(run) == {"sync": "success"}
    actions = ledger_actions(tmp_path / "ledger.jsonl")
    assert actions == {"o-0": "created", "o-1": "created", "o-2": "created", "o-3": "updated", "o-4": "created"}
    [record] = [o for o in sandbox.state("kustomer").kobjects(KLASS) if o["externalId"] == "o-3"]
    assert (record["title"], record["custom"]) == ("Order 3", {"totalNum": 4})
    assert requests_per_record(sandbox, 0)["o-3"] == ["GET", "POST", "GET", "PUT"]
    assert sum(e.method == "POST" for e in sandbox.journal("kustomer")) == 5, "one create per record"


def test_bulk_dry_run_looks_up_and_writes_nothing(
    run_dag, kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.kustomer.seed(KLASS, {"title": "Order 1", "externalId": "o-1", "custom": {"totalNum": 2}})
    sandbox.kustomer.seed(KLASS, {"title": "Order 2", "externalId": "o-2", "custom": {"totalNum": 0}})
    records = [*orders(1, n=3), {"title": "no key", "custom": {"totalNum": 9}}]
    run = run_dag(bulk_dag(records, tmp_path / "ledger.jsonl", dry_run=True))
    assert task_states(run) == {"sync": "success"}
    actions = ledger_actions(tmp_path / "ledger.jsonl")
    assert actions == {"o-0": "would_create", "o-1": "unchanged", "o-2": "would_update", "#3": "invalid"}
    assert sandbox.writes("kustomer") == []
    assert [e.method for e in sandbox.journal("kustomer")] == ["GET"] * 3, "the record without a key is not looked up"


@pytest.mark.parametrize("mode", ["bulk_job", "per_record"])
def test_bulk_record_without_external_id_is_rejected_and_not_sent(
    run_dag, kustomer_conn: str, sandbox: Sandbox, tmp_path: Path, mode: str
) -> None:
    records = [*orders(1, n=2), {"title": "no key", "custom": {"totalNum": 9}}]
    run = run_dag(bulk_dag(records, tmp_path / "ledger.jsonl", mode=mode))
    assert task_states(run) == {"sync": "success"}
    lines = {line["key"]: line for line in read_jsonl(tmp_path / "ledger.jsonl")}
    assert lines["#2"]["action"] == "rejected" and lines["#2"]["error_code"] == "validation_error"
    assert "external_id is required" in lines["#2"]["error_message"]
    assert sorted(o["externalId"] for o in sandbox.state("kustomer").kobjects(KLASS)) == ["o-0", "o-1"]
    sent = [item for e in sandbox.journal("kustomer") for item in (e.body if isinstance(e.body, list) else [e.body])]
    assert sent and all(item is None or item.get("title") != "no key" for item in sent)
