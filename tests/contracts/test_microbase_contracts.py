"""MicroBase contract samples (tests/contracts/microbase/) against the hook and against the emulator.

(a) The hook, pointed at a replay server that answers the sample's documented response, sends the
documented request and turns the answer into the right customer or typed error, retrying only
what may be retried. (b) The emulator, given the sample's request, answers with the same status
and the same JSON shape (and the same ``ok``/``error`` code).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_crm import errors
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.sandbox import Sandbox, fault_from_dict
from tests.conftest import use_connection
from tests.contracts.replay import ReplayServer
from tests.contracts.samples import SANDBOX_TIMEOUT, Sample, canned, load
from tests.contracts.shape import shape_mismatches

SAMPLES = load("microbase")
TOKEN = "contract-token-0123456789"


def _ids(samples: list[Sample]) -> list[str]:
    return [sample.name for sample in samples]


def _call(hook: MicroBaseHook, spec: dict[str, Any]) -> Any:
    args = dict(spec.get("args", {}))
    call = spec["call"]
    if call == "update_customer":
        return hook.update_customer(args.pop("customer_id"), **args)
    if call == "get_customer":
        return hook.get_customer(args["customer_id"])
    if call == "call":
        return hook.call(args["operation"], args["payload"])
    if call == "probe":
        return hook.probe()
    raise AssertionError(f"unknown hook call {call!r}")


def _check_result(result: Any, expected: Any) -> None:
    if isinstance(expected, str):
        assert isinstance(result, str) and expected in result
        return
    got = {name: getattr(result, name) for name in expected}
    assert got == expected


def _check_error(error: BaseException, expected: dict[str, Any]) -> None:
    assert type(error) is getattr(errors, expected["type"]), repr(error)
    assert isinstance(error, errors.CrmApiError)
    assert error.status == expected["status"]
    if "code" in expected:
        assert error.code == expected["code"]
    if "details" in expected:
        assert error.details == expected["details"]


@pytest.mark.parametrize("sample", SAMPLES, ids=_ids(SAMPLES))
def test_hook_reads_the_documented_answer(sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sample.hook
    password = spec.get("connection", {}).get("password", TOKEN)
    with ReplayServer(canned(sample)) as server:
        conn = {"conn_type": "microbase", "host": server.url, "password": password, "extra": {"max_attempts": 2}}
        use_connection(monkeypatch, "microbase_default", conn)
        hook = MicroBaseHook()
        if "raises" in spec:
            with pytest.raises(errors.CrmError) as caught:
                _call(hook, spec)
            _check_error(caught.value, spec["raises"])
        else:
            _check_result(_call(hook, spec), spec["returns"])

    # What it sent: the documented method, path, headers and body, once, or twice if retryable.
    assert len(server.received) == (2 if spec["retried"] else 1)
    sent = server.received[0]
    assert (sent.method, sent.path, sent.query) == (sample.request["method"], sample.request["path"], {})
    assert sent.body == spec.get("sends", sample.request["body"])
    headers = {name.lower(): value for name, value in sent.headers.items()}
    assert headers["authorization"] == f"Bearer {password}"
    assert headers["accept"] == sample.request["headers"]["accept"]
    assert headers["content-type"].split(";")[0] == sample.request["headers"]["content-type"]
    assert all(received == sent for received in server.received)


def _seed(sandbox: Sandbox, spec: dict[str, Any]) -> str | None:
    """Seed the customers and arm the fault (as the control API takes it; ``kind`` defaults to
    server_error); returns the fault's kind."""
    app = sandbox.app("microbase")
    for customer in spec.get("seed", []):
        app.seed(**customer)  # type: ignore[attr-defined]
    if "inject" not in spec:
        return None
    fault = fault_from_dict({"kind": "server_error", **spec["inject"]})
    sandbox.inject("microbase", fault)
    return fault.kind


@pytest.mark.parametrize("sample", SAMPLES, ids=_ids(SAMPLES))
def test_sandbox_answers_like_the_vendor(sample: Sample, sandbox: Sandbox) -> None:
    spec = sample.sandbox
    fault = _seed(sandbox, spec)
    state = sandbox.state("microbase")
    before = (state.customers(), state.events)
    headers = dict(sample.request["headers"])
    token = sandbox.token("microbase") if spec.get("auth", "valid") == "valid" else "not-a-valid-token"
    headers["authorization"] = f"Bearer {token}"
    response = requests.request(
        sample.request["method"],
        sandbox.base_url("microbase") + sample.request["path"],
        json=sample.request["body"],
        headers=headers,
        timeout=SANDBOX_TIMEOUT,
    )

    assert response.status_code == sample.status, response.text[:300]
    assert [entry.fault for entry in sandbox.journal("microbase")] == [fault]
    if fault is not None:  # the fault answered, and the request was not processed
        assert (state.customers(), state.events) == before
    if isinstance(sample.body, str):
        expected_type = sample.response.get("headers", {}).get("Content-Type", "text/plain")
        assert response.headers["Content-Type"].split(";")[0] == expected_type
        assert response.text.strip()
        return
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert shape_mismatches(sample.body, body) == []
    assert body["ok"] is sample.body["ok"]
    assert ("error" in body) == ("error" in sample.body), body  # extra keys pass the shape check; a code must not
    if isinstance(sample.body.get("error"), str):
        assert body["error"] == sample.body["error"]
    if sample.body.get("error") == "validation_error":
        assert len(body["data"]) == len(sample.body["data"]), "the framework reports the first problem only"
    if spec.get("same_body"):  # the sample is a literal from the vendor's source or tests
        assert body == sample.body
