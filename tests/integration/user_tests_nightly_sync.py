"""The nightly sync's tests as its author writes them: only the documented ``crm_airflow`` fixture.

Not collected here: ``test_example_nightly_sync.py`` copies this file, as ``tests/test_nightly_sync.py``,
into a project of its own next to ``dags/example_nightly_sync.py`` and a ``conftest.py`` that enables
the plugin, and runs pytest there with no Airflow settings in the environment.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.sandbox import ServerError
from airflow_provider_crm.sandbox.dag_runner import CrmAirflow

# Airflow 3.3+ keeps a task's progress between tries; before, a retry sends every record again.
RESUMES = tuple(int(part) for part in version("apache-airflow").split(".")[:2]) >= (3, 3)
DAG_FILE = Path(__file__).parents[1] / "dags" / "example_nightly_sync.py"
ORDERS = 500
JOURNAL_SIZE = 10_000  # the sandbox journals this many requests (all vendors), then drops the oldest
KAITEN_CUSTOMER, MICROBASE_CUSTOMER = "acme-corp", "HkhhuXESl"  # the DAG's default params


@pytest.fixture
def crm(crm_airflow: CrmAirflow) -> CrmAirflow:
    # A rerun of 500 upserts looks up each order Kustomer already holds (500 reads): no client-side
    # pacing against the sandbox, and an org budget above the 1,000 a minute it reports.
    for vendor in ("kustomer", "hubspot"):
        crm_airflow.connect(f"{vendor}_default", vendor, extra={"rate_limit_per_second": 0})
    crm_airflow.sandbox.app("kustomer").configure({"org_limit_per_minute": 1_000_000})
    crm_airflow.sandbox.app("kaiten").seed(KAITEN_CUSTOMER, "Acme Corp", domain="acme.example")
    crm_airflow.sandbox.app("microbase").seed(id=MICROBASE_CUSTOMER, email="john.doe@acme.example")
    return crm_airflow


def run_sync(crm: CrmAirflow, base_path: Path, **conf: Any) -> Any:
    return crm.run(DAG_FILE, conf={"base_path": str(base_path), **conf})


def read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def ledger_lines(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in summary["ledger_paths"] for line in Path(path).read_text().splitlines()]


def number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def kobjects_by_external_id(crm: CrmAirflow) -> dict[str, dict[str, Any]]:
    return {k["externalId"]: k for k in crm.sandbox.state("kustomer").kobjects("ecomm-order")}


def hubspot_links(crm: CrmAirflow) -> dict[str, str]:
    orders = crm.sandbox.state("hubspot").orders()
    return {o["properties"]["hs_external_order_id"]: o["properties"]["kustomer_kobject_id"] for o in orders}


def assert_everything_linked(crm: CrmAirflow, run: Any, rows: list[dict[str, str]]) -> None:
    """HubSpot holds one order per row carrying its KObject id; the customers point at the newest order."""
    kobjects = kobjects_by_external_id(crm)
    ids = {external_id: kobject["id"] for external_id, kobject in kobjects.items()}
    assert len(ids) == ORDERS
    assert crm.xcom(run, "push_kobjects", key="ids") == ids, "the ids XCom covers every record, past 100"
    received = crm.xcom(run, "link_records", key="hubspot_orders")
    assert {r["id"]: r["properties"]["kustomer_kobject_id"] for r in received} == ids
    assert crm.sandbox.state("hubspot").count() == ORDERS
    assert hubspot_links(crm) == ids
    newest = ids[max(rows, key=lambda row: instant(row["custom.placedAt"]))["external_id"]]
    assert crm.sandbox.state("kaiten").get(KAITEN_CUSTOMER)["externalCustomerId"] == newest
    assert crm.sandbox.state("kaiten").get(KAITEN_CUSTOMER)["domain"] == "acme.example", "domain kept"
    assert crm.sandbox.state("microbase").get(MICROBASE_CUSTOMER)["tags"] == ["nightly-sync", f"kustomer-{newest}"]


def test_the_first_night_writes_typed_kobjects_and_links_them_everywhere(crm: CrmAirflow, tmp_path: Path) -> None:
    run = run_sync(crm, tmp_path)  # fails the test unless every task succeeded

    rows = read_csv(crm.xcom(run, "export_orders"))
    assert len(rows) == ORDERS
    kobjects = kobjects_by_external_id(crm)
    assert sorted(kobjects) == sorted(row["external_id"] for row in rows)
    for row in rows:
        kobject = kobjects[row["external_id"]]
        custom = kobject["custom"]
        assert kobject["title"] == row["title"]
        assert type(custom["totalNum"]) is type(number(row["custom.totalNum"])), "a number, not text"
        assert custom["totalNum"] == number(row["custom.totalNum"])
        assert custom["giftBool"] is (row["custom.giftBool"] == "true"), "a boolean, not text"
        assert instant(custom["placedAt"]) == instant(row["custom.placedAt"]), "the same date-time"
        assert kobject["tags"] == (row["tags"].split("|") if row["tags"] else [])
    assert {type(k["custom"]["totalNum"]) for k in kobjects.values()} == {int, float}, "whole and decimal totals"
    summary = crm.xcom(run, "push_kobjects")
    assert (summary["total"], summary["created"], summary["rejected"]) == (ORDERS, ORDERS, 0)
    assert crm.xcom(run, "upsert_hubspot_orders")["created"] == ORDERS
    assert_everything_linked(crm, run, rows)


def test_a_rerun_with_changed_totals_updates_those_orders_only(crm: CrmAirflow, tmp_path: Path) -> None:
    first = run_sync(crm, tmp_path)
    rows = read_csv(crm.xcom(first, "export_orders"))
    created = kobjects_by_external_id(crm)
    changed = {row["external_id"] for row in rows[::10]}  # 50 orders
    for row in rows:
        if row["external_id"] in changed:
            row["custom.totalNum"] = str(number(row["custom.totalNum"]) + 100.25)
    export = tmp_path / "orders-changed.csv"
    with export.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = len(crm.sandbox.journal("kustomer"))

    second = run_sync(crm, tmp_path, orders_csv=str(export))

    summary = crm.xcom(second, "push_kobjects")
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 50, 450)
    actions = {line["key"]: line["action"] for line in ledger_lines(summary)}
    assert actions == {row["external_id"]: "updated" if row["external_id"] in changed else "unchanged" for row in rows}
    # Every order goes out once in a bulk create (100 per request); Kustomer refuses the ones it holds,
    # which are looked up and, when they differ, sent in one bulk update by id.
    writes = [e for e in crm.sandbox.journal("kustomer")[before:] if e.method != "GET"]
    creates = Counter(item["externalId"] for e in writes if e.method == "POST" for item in e.body)
    updates = [item for e in writes if e.method == "PUT" for item in e.body]
    assert creates == Counter(row["external_id"] for row in rows), "each order in one bulk create"
    assert sorted(item["id"] for item in updates) == sorted(created[key]["id"] for key in changed)
    assert Counter(e.method for e in writes) == {"POST": 5, "PUT": 1}, "six requests for 500 orders"
    kobjects = kobjects_by_external_id(crm)
    assert len(kobjects) == ORDERS, "no duplicates"
    for row in rows:
        kobject = kobjects[row["external_id"]]
        assert kobject["id"] == created[row["external_id"]]["id"]
        assert kobject["custom"]["totalNum"] == number(row["custom.totalNum"])
        assert kobject["rev"] == (1 if row["external_id"] in changed else 0)
    totals = {
        o["properties"]["hs_external_order_id"]: o["properties"]["hs_total_price"]
        for o in crm.sandbox.state("hubspot").orders()
    }
    assert {key: float(value) for key, value in totals.items()} == {
        row["external_id"]: float(row["custom.totalNum"]) for row in rows
    }
    assert_everything_linked(crm, second, rows)


def test_an_outage_on_try_1_heals_on_try_2_and_writes_each_order_once(
    crm: CrmAirflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_NIGHTLY_SYNC_RETRY_DELAY", "0")  # the DAG's retry_delay: retry at once
    # One attempt per request, so the 503s reach the bulk run instead of being retried in the hook.
    crm.connect("kustomer_default", "kustomer", extra={"max_attempts": 1, "rate_limit_per_second": 0})
    # Three 503s in a row on the first bulk create: its orders were looked up (not there) and sent
    # again twice, then left owed, so try 1 fails and its retry sends them.
    outage = 3
    crm.sandbox.inject("kustomer", ServerError(status=503, count=outage, method="POST"))

    run = run_sync(crm, tmp_path)

    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert tries["push_kobjects"] == 2, "try 1 failed on the outage, try 2 succeeded"
    assert len(crm.sandbox.journal()) < JOURNAL_SIZE, "the journal dropped nothing"
    submits = [e for e in crm.sandbox.journal("kustomer") if e.method == "POST"]
    refused = Counter(item["externalId"] for e in submits if e.status == 503 for item in e.body)
    accepted = Counter(item["externalId"] for e in submits if e.status in (200, 201) for item in e.body)
    assert len(set(refused.values())) == 1 and sum(refused.values()) == outage * len(refused)
    assert len(refused) == 100, "one bulk create's orders"
    kobjects = kobjects_by_external_id(crm)
    assert len(kobjects) == ORDERS, "every order held exactly once"
    if RESUMES:  # try 2 sent only what try 1 owed
        assert accepted == Counter(kobjects.keys()), "each order in exactly one accepted bulk create"
    else:  # try 2 sent every order again; Kustomer refused the second copy of those it held
        assert accepted == Counter(kobjects.keys()) + Counter(key for key in kobjects if key not in refused)
    summary = crm.xcom(run, "push_kobjects")
    ledgers = [[json.loads(line) for line in Path(path).read_text().splitlines()] for path in summary["ledger_paths"]]
    if RESUMES:  # try 2 sent only what try 1 owed, and counts for the whole input
        first_try, second_try = ledgers
        assert Counter((line["action"], line["status"]) for line in first_try) == {
            ("created", "ok"): ORDERS - len(refused),
            ("rejected", "retry"): len(refused),
        }
        assert (summary["total"], summary["created"], summary["rejected"]) == (ORDERS, ORDERS, 0)
        assert {line["key"] for line in second_try} == set(refused)
        assert {line["action"] for line in second_try} == {"created"}
    else:  # no task state to resume from: the orders try 1 wrote are unchanged on try 2
        [second_try] = ledgers
        counts = (summary["total"], summary["created"], summary["unchanged"])
        assert counts == (ORDERS, len(refused), ORDERS - len(refused))
        created_now = {line["key"] for line in second_try if line["action"] == "created"}
        assert created_now == set(refused)
    assert_everything_linked(crm, run, read_csv(crm.xcom(run, "export_orders")))
