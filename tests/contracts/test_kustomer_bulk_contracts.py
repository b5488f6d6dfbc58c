"""Kustomer's documented bulk-job exchanges, replayed against the hook.

Each ``bulk-*.json`` sample in ``tests/contracts/kustomer/`` is one exchange from Kustomer's bulk
material (or derived from it, as its ``note`` says). The hook must send the documented request,
once, and read the documented answer into the typed job, batches or error. The sandbox half of
these samples is tested with the sandbox (tests/sandbox/test_sandbox_kustomer_bulk.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_crm import errors
from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.models.kustomer_bulk import BulkBatch, BulkJob, results_by_client_ref
from airflow_provider_crm.models.kustomer_requests import KObjectCreateRequest, KObjectUpdateRequest
from tests.contracts.hooks import replay_connection
from tests.contracts.replay import ReplayServer
from tests.contracts.samples import Sample, by_name, canned, load

SAMPLES = [sample for sample in load("kustomer") if sample.name.startswith("bulk-")]
TOKEN = "contract-token"


def bulk_requests(plan: dict[str, Any]) -> dict[str, KObjectCreateRequest] | dict[str, KObjectUpdateRequest]:
    """The validated creates or updates a sample's ``hook.items`` describe, by client ref."""
    klass = plan["klass"]
    if plan["call"] == "submit_bulk_create":
        return {item["client_ref"]: KObjectCreateRequest.build(klass, **item["fields"]) for item in plan["items"]}
    return {
        item["client_ref"]: KObjectUpdateRequest.build(klass, item["kobject_id"], **item["fields"])
        for item in plan["items"]
    }


def call(hook: KustomerHook, plan: dict[str, Any]) -> Any:
    method = getattr(hook, plan["call"])
    return method(plan["klass"], bulk_requests(plan)) if "items" in plan else method(plan["job_id"])


def check_result(result: Any, expect: dict[str, Any]) -> None:
    """A job's fields, or the batches' fields and each item's result by client ref."""
    if isinstance(result, BulkJob):
        assert {key: getattr(result, key) for key in expect} == expect
        return
    assert all(isinstance(batch, BulkBatch) for batch in result)
    pairs = zip(result, expect["batches"], strict=True)
    assert [{key: _plain(getattr(batch, key)) for key in wanted} for batch, wanted in pairs] == expect["batches"]
    items = results_by_client_ref(result)
    assert set(items) == set(expect["items"])
    for client_ref, wanted in expect["items"].items():
        assert {key: getattr(items[client_ref], key) for key in wanted} == wanted, client_ref


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_hook_sends_the_documented_request_and_reads_the_answer(
    sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = sample.hook
    with ReplayServer(canned(sample)) as server:
        hook = KustomerHook(kustomer_conn_id=replay_connection(monkeypatch, server, "kustomer", TOKEN))
        if "raises" in plan:
            with pytest.raises(getattr(errors, plan["raises"])) as caught:
                call(hook, plan)
            assert (caught.value.status, caught.value.vendor) == (sample.status, "Kustomer")
        else:
            check_result(call(hook, plan), plan["expect"])
        hook.close()

    assert len(server.received) == 1, "sent once"
    sent, expected = server.received[0], sample.request
    assert sent.headers.get("Authorization") == f"Bearer {TOKEN}"
    assert (sent.method, sent.path) == (expected["method"], expected["path"])
    if "refused_before_sending" not in plan:
        assert sent.body == expected.get("body"), "the documented body, _clientRef and customer included"


def test_more_than_100_items_are_refused_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented limit (``maxItems: 100``): the sample's 101 items never reach the server."""
    sample = by_name(SAMPLES)["bulk-create-400-over-100-items"]
    items = sample.request["body"]
    assert len(items) == sample.hook["refused_before_sending"] == 101
    creates = {item["_clientRef"]: KObjectCreateRequest.build("orders", title=item["title"]) for item in items}
    with ReplayServer(canned(sample)) as server:
        hook = KustomerHook(kustomer_conn_id=replay_connection(monkeypatch, server, "kustomer", TOKEN))
        with pytest.raises(CrmValidationError, match="1 to 100 items per request, got 101"):
            hook.submit_bulk_create("orders", creates)
        hook.close()
    assert server.received == []
