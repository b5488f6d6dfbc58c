"""Bulk operators against the sandbox: every record accounted for, policies, dead letters, dry runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk.policy import BulkRejectedError
from airflow_provider_crm.operators.bulk import (
    HubSpotBulkUpdateOrdersOperator,
    HubSpotBulkUpsertOrdersOperator,
    KaitenBulkUpdateCustomersOperator,
    KustomerBulkCreateKObjectsOperator,
    MicroBaseBulkUpdateCustomersOperator,
)
from airflow_provider_crm.sandbox import RateLimit, Sandbox, ServerError
from tests.helpers import read_jsonl


def create_orders(**options: Any) -> KustomerBulkCreateKObjectsOperator:
    """The Kustomer bulk create of ``orders`` KObjects, run in-process (``execute({})``)."""
    return KustomerBulkCreateKObjectsOperator(task_id="t", klass_name="orders", **options)


def kustomer_records(n: int, bad: set[int] = frozenset()) -> list[dict]:  # type: ignore[assignment]
    return [
        {"external_id": f"r-{i}", "title": f"Order {i}", "custom": {"totalNum": "oops" if i in bad else i}}
        for i in range(n)
    ]


def test_ledger_accounts_for_every_record(kustomer_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.kustomer.seed("orders", {"title": "exists", "externalId": "r-3"})
    records = [*kustomer_records(8, bad={5}), "not an object", {"title": "no key", "colour": "red"}]
    ledger, dead = tmp_path / "ledger.jsonl", tmp_path / "dead.jsonl"
    op = create_orders(
        records=records,
        ledger_path=str(ledger),
        dead_letter_path=str(dead),
        on_record_error="skip",
        max_reject_ratio=0.5,
        mode="per_record",
    )
    summary = op.execute({})
    lines = read_jsonl(ledger)
    assert sorted(line["index"] for line in lines) == list(range(10)), "one line per input record"
    by_key = {line["key"]: line for line in lines}
    assert by_key["r-3"]["action"] == "unchanged"
    assert by_key["r-5"]["action"] == "rejected" and by_key["r-5"]["error_code"] == "validation_error"
    assert by_key["r-5"]["status"] == "error" and by_key["r-0"]["status"] == "ok"
    assert "totalNum" in by_key["r-5"]["error_message"]
    assert {by_key[f"r-{i}"]["action"] for i in (0, 1, 2, 4, 6, 7)} == {"created"}
    stored = {o["externalId"]: o["id"] for o in sandbox.state("kustomer").kobjects("orders")}
    assert all(by_key[k]["remote_id"] == v for k, v in stored.items())
    assert (summary["total"], summary["created"], summary["unchanged"], summary["rejected"]) == (10, 6, 1, 3)
    assert summary["ids"] == {k: v for k, v in stored.items()}
    assert len(read_jsonl(dead)) == 3
    assert len([e for e in sandbox.writes("kustomer") if e.method == "POST"]) == 7, "invalid records never sent"


def test_fail_policy_stops_at_the_first_rejection(kustomer_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    op = create_orders(records=kustomer_records(50, bad={2}), ledger_path=str(ledger), max_workers=1)
    with pytest.raises(BulkRejectedError, match="on_record_error='fail'"):
        op.execute({})
    lines = read_jsonl(ledger)
    assert len(lines) == 50, "records not sent are listed too"
    assert sum(line["action"] == "not_attempted" for line in lines) >= 40
    assert len(sandbox.state("kustomer").kobjects("orders")) < 10


@pytest.mark.parametrize(("ratio", "fails"), [(0.05, True), (0.2, False)])
def test_max_reject_ratio(kustomer_conn: str, sandbox: Sandbox, ratio: float, fails: bool) -> None:
    op = create_orders(
        records=kustomer_records(20, bad={1, 7}),
        on_record_error="warn",
        max_reject_ratio=ratio,
    )
    if fails:
        with pytest.raises(BulkRejectedError, match="above max_reject_ratio"):
            op.execute({})
    else:
        assert op.execute({})["rejected"] == 2
    assert len(sandbox.state("kustomer").kobjects("orders")) == 18, "warn writes every valid record"


def test_all_rejected_always_fails(kustomer_conn: str, sandbox: Sandbox) -> None:
    op = create_orders(
        records=kustomer_records(3, bad={0, 1, 2}),
        on_record_error="skip",
        max_reject_ratio=1.0,
    )
    with pytest.raises(BulkRejectedError, match="every record was rejected"):
        op.execute({})


def test_dead_letter_replays_through_the_same_operator(microbase_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    app = sandbox.app("microbase")
    for i in range(4):
        app.seed(id=f"c{i}", email=f"c{i}@example.com")
    records = [{"id": f"c{i}", "status": "INACTIVE"} for i in range(6)]  # c4, c5 don't exist yet
    dead = tmp_path / "dead.jsonl"
    first = MicroBaseBulkUpdateCustomersOperator(
        task_id="t", records=records, dead_letter_path=str(dead), on_record_error="warn", max_reject_ratio=0.5
    ).execute({})
    assert (first["updated"], first["rejected"]) == (4, 2)
    dead_lines = read_jsonl(dead)
    assert [line["id"] for line in sorted(dead_lines, key=lambda d: d["id"])] == ["c4", "c5"]
    assert all(line["_crm_error"]["code"] == "customer_not_found" for line in dead_lines)

    app.seed(id="c4", email="c4@example.com")
    app.seed(id="c5", email="c5@example.com")
    replay = MicroBaseBulkUpdateCustomersOperator(
        task_id="t2", source=str(dead), dead_letter_path=str(tmp_path / "dead2.jsonl")
    ).execute({})
    assert (replay["total"], replay["updated"], replay["rejected"]) == (2, 2, 0)
    assert all(c["status"] == "INACTIVE" for c in sandbox.state("microbase").customers())


def test_dry_run_writes_nothing(kustomer_conn: str, kaiten_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.kustomer.seed("orders", {"title": "exists", "externalId": "r-1"})
    report = create_orders(
        records=kustomer_records(3, bad={2}),
        dry_run=True,
        dead_letter_path=str(tmp_path / "dead.jsonl"),
        ledger_path=str(tmp_path / "ledger.jsonl"),
    ).execute({})
    assert (report["would_create"], report["unchanged"], report["invalid"]) == (1, 1, 1)
    sandbox.app("kaiten").seed("acme-corp", "Acme", domain="acme.com")
    kaiten = KaitenBulkUpdateCustomersOperator(
        task_id="k",
        records=[{"slug": "acme-corp", "domain": "acme.io"}, {"slug": "missing-co", "name": "X"}],
        dry_run=True,
    ).execute({})
    assert (kaiten["would_update"], kaiten["invalid"]) == (1, 1)
    assert sandbox.writes("kustomer") == [] and sandbox.writes("kaiten") == [], "the journal holds no writes"
    assert not (tmp_path / "dead.jsonl").exists() or read_jsonl(tmp_path / "dead.jsonl") == []
    assert len(read_jsonl(tmp_path / "ledger.jsonl")) == 3


def test_kaiten_bulk_keeps_absent_fields_clears_nulls_and_skips_no_ops(kaiten_conn: str, sandbox: Sandbox) -> None:
    app = sandbox.app("kaiten")
    app.seed("a-co", "A", external_customer_id="x-1", domain="a.com")
    app.seed("b-co", "B", external_customer_id="x-2", domain="b.com")
    summary = KaitenBulkUpdateCustomersOperator(
        task_id="t", records=[{"slug": "a-co", "domain": None}, {"slug": "b-co", "name": "B"}]
    ).execute({})
    assert (summary["updated"], summary["unchanged"]) == (1, 1)
    a = sandbox.state("kaiten").get("a-co")
    assert (a["name"], a["externalCustomerId"], a["domain"]) == ("A", "x-1", None)
    assert [e.path for e in sandbox.writes("kaiten")] == ["/api/customers/a-co"]


def test_jsonl_and_csv_sources(kustomer_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in kustomer_records(3)) + "\n\n{broken\n")
    summary = create_orders(source=str(jsonl), on_record_error="skip", max_reject_ratio=0.5).execute({})
    assert (summary["created"], summary["rejected"]) == (3, 1)

    path = tmp_path / "in.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "properties.hs_order_name", "properties.hs_fulfillment_status"])
        writer.writerow(["ext-1", "First", "placed"])
        writer.writerow(["ext-2", "Second", ""])
    import os

    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(sandbox.airflow_connection("hubspot"))
    try:
        summary = HubSpotBulkUpsertOrdersOperator(
            task_id="h", source=str(path), id_property="hs_external_order_id"
        ).execute({})
    finally:
        del os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"]
    assert summary["created"] == 2
    names = sorted(o["properties"]["hs_order_name"] for o in sandbox.state("hubspot").orders())
    assert names == ["First", "Second"]


def test_hubspot_bulk_update_uses_batches_and_reports_each_failure(
    hubspot_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = [sandbox.app("hubspot").seed({"hs_order_name": f"o{i}"}) for i in range(250)]
    records = [{"id": i, "properties": {"hs_total_price": 5}} for i in ids]
    records[10]["properties"] = {"hs_total_price": "NaN-ish"}
    records[200]["id"] = "404404"
    ledger = tmp_path / "ledger.jsonl"
    summary = HubSpotBulkUpdateOrdersOperator(
        task_id="t",
        records=records,
        ledger_path=str(ledger),
        on_record_error="warn",
        max_reject_ratio=0.1,
        rate_limit=0,
    ).execute({})
    assert (summary["updated"], summary["rejected"]) == (248, 2)
    sizes = [len(e.body["inputs"]) for e in sandbox.writes("hubspot")]
    # One request per 100 records, plus halves of the batch HubSpot refused whole for the bad value.
    assert sizes.count(100) == 2 and len(sizes) <= 3 + 2 * 7, sizes
    rejected = {line["index"]: line for line in read_jsonl(ledger) if line["action"] == "rejected"}
    assert set(rejected) == {10, 200}
    assert rejected[200]["error_code"] == "OBJECT_NOT_FOUND"
    assert "ids" not in summary, "XCom stays bounded: no id map above 100 records"


def test_429s_slow_the_run_but_lose_nothing(kustomer_conn: str, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", RateLimit(retry_after=0.2, count=6, method="POST"))
    sandbox.inject("kustomer", ServerError(status=503, count=2, method="POST"))
    summary = create_orders(records=kustomer_records(30)).execute({})
    assert summary["created"] == 30 and summary["rejected"] == 0
    assert summary["rate_limited"] >= 1
    assert len(sandbox.state("kustomer").kobjects("orders")) == 30


def test_bad_policy_settings_fail_at_parse_time() -> None:
    with pytest.raises(ValueError, match="on_record_error"):
        KustomerBulkCreateKObjectsOperator(task_id="t", klass_name="k", records=[], on_record_error="ignore")
    with pytest.raises(ValueError, match="max_reject_ratio"):
        KustomerBulkCreateKObjectsOperator(task_id="t", klass_name="k", records=[], max_reject_ratio=2)


def test_dry_run_reports_every_record_even_with_the_fail_policy(kustomer_conn: str, sandbox: Sandbox) -> None:
    report = create_orders(records=kustomer_records(6, bad={0, 3}), dry_run=True, max_workers=1).execute({})
    assert (report["would_create"], report["invalid"]) == (4, 2)
    assert "not_attempted" not in report
    assert sandbox.writes("kustomer") == []


@pytest.mark.parametrize("batch_size", [0, 101])
def test_hubspot_batch_size_beyond_hubspot_cap_is_refused_when_the_dag_is_parsed(batch_size: int) -> None:
    with pytest.raises(ValueError, match=rf"batch_size must be between 1 and 100 \(HubSpot's cap\), not {batch_size}"):
        HubSpotBulkUpdateOrdersOperator(task_id="orders", source="orders.jsonl", batch_size=batch_size)
    assert HubSpotBulkUpdateOrdersOperator(task_id="ok", source="orders.jsonl", batch_size=100).batch_size == 100
