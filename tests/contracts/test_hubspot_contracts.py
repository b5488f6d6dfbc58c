"""HubSpot's documented answers (tests/contracts/hubspot/) against the hook and against the sandbox.

The hook runs against a loopback server replaying each sample's response (or the sequence its
``hook.replay`` names) and must read it into the sample's result or typed error, having sent the
documented request. The sandbox, given the same request after seeding what the sample's
``sandbox`` block describes, must answer with the same status and the same JSON shape.

``sandbox`` block: ``properties`` (definitions to add), ``seed`` (orders to store, in order),
``ids`` (the sample's order ids -> index in ``seed``; replaced in the request before sending),
``settings``, ``token`` (sent instead of the valid one), ``fault`` and ``ignore`` (JSON paths of
optional fields the emulator leaves out).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.models.hubspot import BatchResult, HubSpotObject
from airflow_provider_crm.sandbox import HttpStatus, RateLimit, Sandbox, ServerError
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp
from tests.contracts.hooks import call_as_documented, replay_connection
from tests.contracts.replay import ReplayServer
from tests.contracts.samples import SANDBOX_TIMEOUT, Sample, by_name, canned, load
from tests.contracts.shape import shape_mismatches

SAMPLES = load("hubspot")
BY_NAME = by_name(SAMPLES)
TOKEN = "pat-na1-contract-token-0123456789"


def replay_hook(monkeypatch: pytest.MonkeyPatch, server: ReplayServer) -> HubSpotHook:
    return HubSpotHook(hubspot_conn_id=replay_connection(monkeypatch, server, "hubspot", TOKEN))


def check_returned(result: Any, expected: dict[str, Any]) -> None:
    if isinstance(result, BatchResult):
        assert sorted(result.written) == expected["written"]
        assert [[e.index, e.category] for e in result.errors] == expected["errors"]
        for key in ("read_back", "requests", "isolation_requests"):
            if key in expected:
                assert getattr(result, key) == expected[key], key
        if "new" in expected:
            assert [result.written[p].new for p in sorted(result.written)] == expected["new"]
    elif isinstance(result, HubSpotObject):
        assert {key: getattr(result, key) for key in expected} == expected
    else:  # read_orders: {id: order}
        assert sorted(result) == expected["found"]
        assert all(isinstance(order, HubSpotObject) for order in result.values())


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_hook_reads_the_documented_answer(sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sample.hook
    answers = [canned(BY_NAME[name]) for name in spec.get("replay", [sample.name])]
    with ReplayServer(*answers) as server:
        call_as_documented(replay_hook(monkeypatch, server), spec, "HubSpot", check_returned)
    received = server.received
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in received)
    assert len(received) == len(answers) if "replay" in spec else len(received) == 1
    if spec.get("same_request", True):
        first = received[0]
        assert (first.method, first.path) == (sample.request["method"], sample.request["path"])
        assert first.query == sample.request.get("query", {})
        assert first.body == sample.request.get("body")
    if "sent_ids" in spec:
        assert [[i["id"] for i in r.body["inputs"]] for r in received] == spec["sent_ids"]
    for later, name in zip(received[1:], spec.get("replay", [])[1:], strict=False):
        documented = BY_NAME[name].request
        assert (later.method, later.path) == (documented["method"], documented["path"])
        if documented["path"].endswith("/batch/read"):
            assert later.body == documented["body"], "the read-back asks exactly what the sample documents"


def _replace_ids(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_replace_ids(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _replace_ids(item, ids) for key, item in value.items()}
    return value


def _arm(sandbox: Sandbox, app: HubSpotApp, block: dict[str, Any]) -> dict[str, str]:
    """Set the sandbox up as the sample's block says; returns sample id -> stored id."""
    for name, definition in block.get("properties", {}).items():
        app.add_property(name, definition["type"], **{k: v for k, v in definition.items() if k != "type"})
    stored = [app.seed(properties) for properties in block.get("seed", [])]
    app.configure(block.get("settings", {}))
    fault = block.get("fault")
    if fault is not None and fault["kind"] == "rate_limit":
        sandbox.inject("hubspot", RateLimit(policy=fault["policy"], interval_ms=fault.get("interval_ms")))
    elif fault is not None and fault["kind"] == "status":
        sandbox.inject("hubspot", HttpStatus(status=fault["status"]))
    elif fault is not None:
        sandbox.inject("hubspot", ServerError(status=fault["status"]))
    return {sample_id: stored[index] for sample_id, index in block.get("ids", {}).items()}


def _sandbox_request(sandbox: Sandbox, sample: Sample) -> requests.Response:
    app = sandbox.app("hubspot")
    assert isinstance(app, HubSpotApp)
    block = sample.sandbox
    ids = _arm(sandbox, app, block)
    request = sample.request
    path = "/".join(_replace_ids(part, ids) for part in request["path"].split("/"))
    body = _replace_ids(request.get("body"), ids)
    token = block.get("token", app.token)
    return requests.request(
        request["method"],
        sandbox.base_url("hubspot") + path,
        params=request.get("query"),
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=SANDBOX_TIMEOUT,
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_sandbox_answers_in_the_documented_shape(sample: Sample, sandbox: Sandbox) -> None:
    response = _sandbox_request(sandbox, sample)
    assert response.status_code == sample.status, response.text
    for name, value in (sample.response.get("headers") or {}).items():
        assert name in response.headers, f"{name} missing from {dict(response.headers)}"
        if name.lower() == "content-type":
            assert response.headers[name].split(";")[0] == value
    answer = response.json()
    ignore = frozenset(sample.sandbox.get("ignore", []))
    assert shape_mismatches(sample.body, answer, ignore=ignore) == []
    for key in ("category", "policyName", "errorType"):
        if key in sample.body:  # clients branch on these, so the sandbox must use HubSpot's values
            assert answer[key] == sample.body[key]
    errors_sent = sample.body.get("errors") if isinstance(sample.body, dict) else None
    if isinstance(errors_sent, list) and errors_sent:
        assert [e["category"] for e in answer["errors"]] == [e["category"] for e in errors_sent]
    assert len(sandbox.journal("hubspot")) == 1


def test_samples_cover_every_answer_the_hook_must_read() -> None:
    statuses = {
        (sample.request["method"], sample.request["path"].rsplit("/", 1)[-1], sample.status) for sample in SAMPLES
    }
    assert {("PATCH", "512", 200), ("GET", "512", 200), ("POST", "update", 200), ("POST", "update", 207)} <= statuses
    assert {("POST", "upsert", 200), ("POST", "read", 200), ("POST", "read", 207), ("POST", "update", 400)} <= statuses
    assert {401, 403, 404, 409, 423, 429, 500} <= {sample.status for sample in SAMPLES}
    assert {BY_NAME[name].body["policyName"] for name in ("error-429-ten-secondly-rolling", "error-429-daily")} == {
        "TEN_SECONDLY_ROLLING",
        "DAILY",
    }
