"""What ``null`` means in a bulk record, as docs/operators/bulk.md says: a top-level ``null`` is left
out (the field keeps its value); inside Kustomer's ``custom`` it is sent and clears the attribute
(developer.kustomer.com/docs/concepts/custom-attributes: "Every type also accepts null to clear the
value")."""

from __future__ import annotations

from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator, KustomerBulkUpdateKObjectsOperator
from airflow_provider_crm.sandbox import Sandbox

KLASS = "orders"


def test_null_inside_custom_is_sent_and_clears(kustomer_conn: str, sandbox: Sandbox) -> None:
    kobject = sandbox.kustomer.seed(KLASS, {"title": "Order 1", "custom": {"totalNum": 10, "noteStr": "gift"}})
    summary = KustomerBulkUpdateKObjectsOperator(
        task_id="t",
        klass_name=KLASS,
        records=[{"id": kobject["id"], "description": None, "custom": {"noteStr": None}}],
        mode="per_record",
    ).execute({})

    assert summary["updated"] == 1
    [put] = [entry.body for entry in sandbox.writes("kustomer") if entry.method == "PUT"]
    assert put == {"custom": {"noteStr": None}}, "top-level null left out, null in custom sent"
    stored = sandbox.state("kustomer").get(KLASS, kobject["id"])
    assert stored["custom"] == {"totalNum": 10, "noteStr": None}


def test_null_inside_custom_on_create_is_sent(kustomer_conn: str, sandbox: Sandbox) -> None:
    KustomerBulkCreateKObjectsOperator(
        task_id="t",
        klass_name=KLASS,
        records=[{"external_id": "o-1", "title": "Order 1", "tags": None, "custom": {"totalNum": None}}],
        mode="per_record",
    ).execute({})

    [post] = [entry.body for entry in sandbox.writes("kustomer") if entry.method == "POST"]
    assert "tags" not in post and post["custom"] == {"totalNum": None}
