"""The OpenLineage names of what the operators write (from the connection) and read (a file or object URL)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.lineage import DatasetName, file_dataset, vendor_dataset
from tests.conftest import use_connection


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/data/orders.csv", ("file", "/data/orders.csv")),
        ("file:///data/orders.csv", ("file", "/data/orders.csv")),
        ("file://nas/data/orders.csv", ("file://nas", "/data/orders.csv")),
        ("s3://exports/crm/2026-01-01/orders.csv", ("s3://exports", "crm/2026-01-01/orders.csv")),
        ("gs://exports/orders.jsonl", ("gs://exports", "orders.jsonl")),
        ("s3://exports", ("s3://exports", "/")),
    ],
)
def test_an_input_file_is_named_as_airflows_providers_name_it(location: str, expected: tuple[str, str]) -> None:
    assert file_dataset(location) == DatasetName(*expected)


def test_a_relative_path_is_named_by_its_absolute_path() -> None:
    assert file_dataset("exports/orders.csv") == DatasetName("file", os.path.join(os.getcwd(), "exports/orders.csv"))


@pytest.mark.parametrize(
    ("hook_class", "connection", "klass", "expected"),
    [
        (
            KustomerHook,
            {"host": "https://acme.api.kustomerapp.com"},
            "order",
            ("kustomer://acme.api.kustomerapp.com", "klasses.order"),
        ),
        (KustomerHook, {"extra": {"region": "eu"}}, "order", ("kustomer://api.prod2.kustomerapp.com", "klasses.order")),
        (HubSpotHook, {"extra": {"portal_id": "4815162"}}, None, ("hubspot://4815162", "orders")),
        (HubSpotHook, {}, None, ("hubspot://api.hubapi.com", "orders")),
        (KaitenHook, {"host": "https://Kaiten.Example.com"}, None, ("kaiten://kaiten.example.com", "customers")),
        (MicroBaseHook, {"host": "http://127.0.0.1", "port": 3005}, None, ("microbase://127.0.0.1:3005", "customers")),
    ],
)
def test_a_vendor_dataset_is_named_from_the_connection(
    monkeypatch: pytest.MonkeyPatch, hook_class: Any, connection: dict[str, Any], klass: str | None, expected: Any
) -> None:
    conn_id = use_connection(monkeypatch, "lineage_test", {"conn_type": hook_class.conn_type, **connection})
    hook = hook_class(conn_id)
    assert vendor_dataset(hook, klass) == DatasetName(*expected)


def test_a_kustomer_dataset_needs_its_klass(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = use_connection(monkeypatch, "lineage_test", {"conn_type": "kustomer"})
    with pytest.raises(ValueError, match="klass"):
        vendor_dataset(KustomerHook(conn_id))


def test_a_failed_single_write_and_a_dry_run_report_no_records_written(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_provider_crm.operators.bulk import KaitenBulkUpdateCustomersOperator
    from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator

    use_connection(monkeypatch, "kaiten_default", {"conn_type": "kaiten", "host": "https://kaiten.example.com"})
    single = KaitenUpdateCustomerOperator(task_id="single", customer_slug="acme-corp", name="Acme")
    failed = single.get_openlineage_facets_on_failure(None)
    assert failed is not None
    assert [(d.namespace, d.name, d.outputFacets) for d in failed.outputs] == [
        ("kaiten://kaiten.example.com", "customers", {})
    ]
    preview = KaitenBulkUpdateCustomersOperator(task_id="preview", source="s3://exports/customers.csv", dry_run=True)
    previewed = preview.get_openlineage_facets_on_complete(None)
    assert previewed is not None
    assert ([(d.namespace, d.name) for d in previewed.inputs], previewed.outputs) == (
        [("s3://exports", "customers.csv")],
        [],
    )
