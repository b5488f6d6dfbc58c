"""Typed CSV: cells become the vendor's types (Kustomer suffixes, lists) before records are checked.

The operator tests run inside real Airflow (``dag.test()``) and assert on what the sandbox received
(journal bodies, parsed from the JSON on the wire) and holds (state). Other sources keep their types:
a JSON Lines record with a string for a ``Num`` attribute is still refused.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.bulk.cells import CellTypes, check_column_types, convert_cell
from airflow_provider_crm.bulk.policy import BulkRejectedError
from airflow_provider_crm.bulk.sources import BadRecord, TextRecord, iter_records
from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models import kustomer, microbase
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator
from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import read_jsonl, task_states, xcom_values

KLASS = "ecomm-order"
ORDER_ID = "5822a4a5aa5f92110005d69a"
HEADER = [
    "external_id",
    "title",
    "custom.totalNum",
    "custom.giftBool",
    "custom.shippedAt",
    "custom.primaryOrderId",
    "tags",
]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


KUSTOMER_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KustomerBulkCreateKObjectsOperator(
        task_id="orders",
        klass_name="ecomm-order",
        source=SOURCE,
        ledger_path=LEDGER,
        dead_letter_path=DEAD,
        on_record_error="skip",
        max_reject_ratio=0.5,
        column_types=COLUMN_TYPES,
        mode="per_record",
    )
"""


def kustomer_dag(source: str, tmp_path: Path, column_types: dict[str, str] | None = None) -> str:
    return (
        KUSTOMER_DAG.replace("SOURCE", repr(source))
        .replace("LEDGER", repr(str(tmp_path / "ledger.jsonl")))
        .replace("DEAD", repr(str(tmp_path / "dead.jsonl")))
        .replace("COLUMN_TYPES", repr(column_types))
    )


def test_csv_cells_reach_kustomer_as_numbers_booleans_and_lists(
    run_dag: Any, kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [
            ["o-1", "Order 1", "42", "true", "2026-01-02T03:04:05Z", ORDER_ID, "vip | wholesale"],
            ["o-2", "Order 2", "12.50", "No", "2026-01-03T00:00:00+02:00", "", "gift"],
            ["o-3", "Order 3", "abc", "yes", "", "", ""],
            ["o-4", "Order 4", "7", "maybe", "", "", ""],
            ["o-5", "Order 5", "", "0", "", "", ""],
        ],
    )

    run = run_dag(kustomer_dag(source, tmp_path))

    assert task_states(run) == {"orders": "success"}
    summary = xcom_values(run)["orders"]
    assert isinstance(summary, dict) and (summary["created"], summary["rejected"]) == (3, 2)
    posts = {entry.body["externalId"]: entry.body for entry in sandbox.writes("kustomer") if entry.method == "POST"}
    assert sorted(posts) == ["o-1", "o-2", "o-5"], "records with a bad cell are never sent"
    # The journal holds the parsed JSON bodies: the wire carried JSON numbers, booleans and arrays.
    assert posts["o-1"]["custom"] == {
        "totalNum": 42,
        "giftBool": True,
        "shippedAt": "2026-01-02T03:04:05+00:00",
        "primaryOrderId": ORDER_ID,
    }
    assert type(posts["o-1"]["custom"]["totalNum"]) is int
    assert posts["o-1"]["tags"] == ["vip", "wholesale"]
    assert posts["o-2"]["custom"] == {"totalNum": 12.5, "giftBool": False, "shippedAt": "2026-01-02T22:00:00+00:00"}
    assert type(posts["o-2"]["custom"]["totalNum"]) is float
    assert posts["o-2"]["tags"] == ["gift"]
    assert posts["o-5"]["custom"] == {"giftBool": False}, "an empty cell is left out, not sent as null"
    assert "tags" not in posts["o-5"]

    held = {kobject["externalId"]: kobject for kobject in sandbox.state("kustomer").kobjects(KLASS)}
    assert set(held) == {"o-1", "o-2", "o-5"}
    assert held["o-1"]["custom"]["totalNum"] == 42 and held["o-1"]["custom"]["giftBool"] is True
    assert held["o-2"]["custom"]["giftBool"] is False and held["o-1"]["tags"] == ["vip", "wholesale"]

    ledger = {line["key"]: line for line in read_jsonl(tmp_path / "ledger.jsonl")}
    assert (ledger["o-3"]["action"], ledger["o-3"]["error_code"]) == ("rejected", "validation_error")
    assert "custom.totalNum" in ledger["o-3"]["error_message"] and "'abc'" in ledger["o-3"]["error_message"]
    assert "line 4" in ledger["o-3"]["error_message"]
    assert (ledger["o-4"]["action"], ledger["o-4"]["error_code"]) == ("rejected", "validation_error")
    assert "custom.giftBool" in ledger["o-4"]["error_message"] and "'maybe'" in ledger["o-4"]["error_message"]
    dead = {line["external_id"]: line for line in read_jsonl(tmp_path / "dead.jsonl")}
    assert dead["o-3"]["custom"] == {"totalNum": "abc", "giftBool": "yes"}, "a refused record keeps its text"


def test_column_types_override_the_vendor_types(
    run_dag: Any, kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "orders.csv",
        ["external_id", "title", "custom.scoreNum", "custom.totalNum", "data", "tags"],
        [
            ["o-1", "Order 1", "7", "7", '{"sku": "A-1", "qty": 2}', '["a,b", "c"]'],
            ["o-2", "Order 2", "x", "1", "", ""],
        ],
    )
    column_types = {"custom.scoreNum": "float", "data": "json", "tags": "json"}

    run = run_dag(kustomer_dag(source, tmp_path, column_types))

    assert task_states(run) == {"orders": "success"}
    [post] = [entry.body for entry in sandbox.writes("kustomer") if entry.method == "POST"]
    assert post["custom"] == {"scoreNum": 7.0, "totalNum": 7}
    assert type(post["custom"]["scoreNum"]) is float, "the override (float) wins over the suffix (number)"
    assert type(post["custom"]["totalNum"]) is int
    assert (post["data"], post["tags"]) == ({"sku": "A-1", "qty": 2}, ["a,b", "c"])
    [held] = sandbox.state("kustomer").kobjects(KLASS)
    assert (held["data"], held["tags"]) == ({"sku": "A-1", "qty": 2}, ["a,b", "c"])
    [rejected] = [line for line in read_jsonl(tmp_path / "ledger.jsonl") if line["action"] == "rejected"]
    assert (rejected["key"], rejected["error_code"]) == ("o-2", "validation_error")
    assert "column custom.scoreNum (float): 'x' is not a number" in rejected["error_message"]


def test_column_types_are_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match=r"column_types\['custom.scoreNum'\]: unknown type 'decimal'"):
        KustomerBulkCreateKObjectsOperator(task_id="t", klass_name="k", column_types={"custom.scoreNum": "decimal"})
    with pytest.raises(ValueError, match="non-empty column name"):
        KustomerBulkCreateKObjectsOperator(task_id="t", klass_name="k", column_types={"": "str"})


MICROBASE_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import MicroBaseBulkUpdateCustomersOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    MicroBaseBulkUpdateCustomersOperator(task_id="customers", source=SOURCE)
"""


def test_microbase_tags_from_csv_become_a_list(
    run_dag: Any, microbase_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    app = sandbox.app("microbase")
    app.seed(id="c1", email="c1@example.com")
    app.seed(id="c2", email="c2@example.com")
    source = write_csv(
        tmp_path / "customers.csv",
        ["id", "status", "tags"],
        [["c1", "INACTIVE", "VIP|churn-risk"], ["c2", "", "wholesale"]],
    )

    run = run_dag(MICROBASE_DAG.replace("SOURCE", repr(source)))

    assert task_states(run) == {"customers": "success"}
    state = sandbox.state("microbase")
    assert state.get("c1")["tags"] == ["VIP", "churn-risk"] and state.get("c1")["status"] == "INACTIVE"
    assert state.get("c2")["tags"] == ["wholesale"]
    sent = [json.dumps(entry.body) for entry in sandbox.writes("microbase")]
    assert len(sent) == 2 and all('"tags": [' in body for body in sent), sent


def test_json_lines_keep_their_types(kustomer_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    """No conversion outside text sources: a string for a Num attribute is refused, as before."""
    source = tmp_path / "orders.jsonl"
    records = [
        {"external_id": "j-1", "title": "J1", "custom": {"totalNum": "42"}},
        {"external_id": "j-2", "title": "J2", "custom": {"giftBool": "true"}, "tags": "a|b"},
        {"external_id": "j-3", "title": "J3", "custom": {"totalNum": 42}},
    ]
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    ledger = tmp_path / "ledger.jsonl"

    summary = KustomerBulkCreateKObjectsOperator(
        task_id="t",
        klass_name=KLASS,
        source=str(source),
        ledger_path=str(ledger),
        on_record_error="skip",
        max_reject_ratio=1.0,
        column_types={"custom.totalNum": "int"},
        mode="per_record",
    ).execute({})

    assert (summary["created"], summary["rejected"]) == (1, 2)
    lines = {line["key"]: line for line in read_jsonl(ledger)}
    assert "must be a number, got str" in lines["j-1"]["error_message"]
    assert "must be true or false, got str" in lines["j-2"]["error_message"]
    [post] = [entry.body for entry in sandbox.writes("kustomer") if entry.method == "POST"]
    assert post["externalId"] == "j-3"


def test_a_csv_dead_letter_holds_the_values_sent_and_replays_as_json_lines(
    kustomer_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "orders.csv",
        ["external_id", "title", "custom.totalNum", "tags"],
        [["d-1", "", "5", "a|b"]],  # no title: refused by the model, after its cells were converted
    )
    dead = tmp_path / "dead.jsonl"
    op = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name=KLASS, source=source, dead_letter_path=str(dead), on_record_error="skip"
    )
    with pytest.raises(BulkRejectedError, match="every record was rejected"):
        op.execute({})
    [line] = read_jsonl(dead)
    assert (line["custom"], line["tags"]) == ({"totalNum": 5}, ["a", "b"])
    assert "title" in line["_crm_error"]["message"]

    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(json.dumps({**line, "title": "Order d-1"}) + "\n")
    replay = KustomerBulkCreateKObjectsOperator(task_id="r", klass_name=KLASS, source=str(fixed)).execute({})
    assert replay["created"] == 1
    held = sandbox.state("kustomer").find_by_external_id(KLASS, "d-1")
    assert held["custom"] == {"totalNum": 5} and held["tags"] == ["a", "b"]


# Conversions, one cell at a time.


@pytest.mark.parametrize(
    ("text", "cell_type", "value"),
    [
        ("42", "number", 42),
        (" -7 ", "number", -7),
        ("3.5", "number", 3.5),
        ("1e3", "number", 1000.0),
        ("12.0", "number", 12.0),
        ("42", "float", 42.0),
        ("+5", "int", 5),
        ("TRUE", "bool", True),
        ("Yes", "bool", True),
        ("1", "bool", True),
        ("false", "bool", False),
        ("NO", "bool", False),
        ("0", "bool", False),
        ("a", "list", ["a"]),
        (" a | b |c", "list", ["a", "b", "c"]),
        ('{"a": [1, null]}', "json", {"a": [1, None]}),
        ("007", "str", "007"),
        (" keep spaces ", "str", " keep spaces "),
    ],
)
def test_cells_convert(text: str, cell_type: str, value: object) -> None:
    converted = convert_cell(text, cell_type)
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize(
    ("text", "cell_type"),
    [
        ("abc", "number"),
        ("NaN", "number"),
        ("inf", "number"),
        ("-Infinity", "float"),
        ("1e999", "float"),
        ("1,5", "number"),
        ("1_000", "number"),
        ("1 000", "number"),
        ("4.2", "int"),
        ("maybe", "bool"),
        ("y", "bool"),
        ("", "bool"),
        ("a||b", "list"),
        ("a|", "list"),
        (" ", "list"),
        ("{'a': 1}", "json"),
        ("NaN", "json"),
    ],
)
def test_bad_cells_are_refused(text: str, cell_type: str) -> None:
    with pytest.raises(ValueError):
        convert_cell(text, cell_type)


def test_kustomer_and_microbase_cell_types() -> None:
    expected = {
        "custom.totalNum": "number",
        "custom.giftBool": "bool",
        "custom.shippedAt": "str",
        "custom.primaryOrderId": "str",
        "custom.reasonStr": "str",
        "custom.notesTxt": "str",
        "custom.accountUrl": "str",
        "custom.colour": None,
        "tags": "list",
        "images": "list",
        "rev": "int",
        "title": None,
        "data.Num": None,
    }
    assert {column: kustomer.cell_type(column) for column in expected} == expected
    assert (microbase.cell_type("tags"), microbase.cell_type("status"), microbase.cell_type("email")) == (
        "list",
        None,
        None,
    )


def test_a_bad_cell_names_line_column_and_value_and_converts_nothing() -> None:
    record = TextRecord({"custom": {"totalNum": "12", "giftBool": "perhaps"}}, line=9)
    with pytest.raises(CrmValidationError, match=r"line 9, column custom.giftBool \(bool\): 'perhaps' is not") as err:
        CellTypes(kustomer.cell_type).convert(record)
    assert err.value.field == "custom.giftBool"
    assert record == {"custom": {"totalNum": "12", "giftBool": "perhaps"}} and not record.typed


def test_check_column_types_refuses_unknown_types() -> None:
    assert check_column_types(None) == {}
    with pytest.raises(ValueError, match="use one of str, int, float, number, bool, list, json"):
        check_column_types({"a": "date"})
    with pytest.raises(ValueError, match="must map column names"):
        check_column_types(["a"])  # type: ignore[arg-type]


# The CSV source.


def test_csv_rows_are_text_records_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('\ufeffexternal_id,custom.noteTxt,tags\no-1,"two\nlines",a\n\no-2,,\no-3,x,y,EXTRA\n', "utf-8")
    records = list(iter_records(source=str(path)))
    first, second, bad = records
    assert isinstance(first, TextRecord) and isinstance(second, TextRecord)
    assert first == {"external_id": "o-1", "custom": {"noteTxt": "two\nlines"}, "tags": "a"}, "BOM dropped"
    assert (first.line, second.line) == (2, 5)
    assert second == {"external_id": "o-2"}, "empty cells are left out"
    assert isinstance(bad, BadRecord) and "line 6: 4 cells but 3 columns" in bad.reason


@pytest.mark.parametrize(
    ("header", "message"),
    [("a,a", "column 'a' appears twice"), ("custom,custom.totalNum", "would both set 'custom'")],
)
def test_csv_columns_that_overwrite_each_other_are_refused(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"{header}\n1,2\n")
    with pytest.raises(ValueError, match=message):
        list(iter_records(source=str(path)))


def test_records_from_xcom_are_plain_dicts() -> None:
    [record] = list(iter_records([{"custom": {"totalNum": "1"}}]))
    assert not isinstance(record, TextRecord)
