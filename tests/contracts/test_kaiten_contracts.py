"""Kaiten's documented answers (tests/contracts/kaiten/) against the hook and against the sandbox.

The hook runs against a loopback server replaying each sample's response and must read it into
the sample's result or typed error, having sent the documented request. The sandbox, given the
same request, must answer with the same status and the same JSON shape.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_crm import errors
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.sandbox import RateLimit, Sandbox, ServerError
from airflow_provider_crm.sandbox.vendors.kaiten.app import KaitenApp
from tests.contracts.hooks import call_as_documented, replay_connection
from tests.contracts.replay import ReplayServer
from tests.contracts.samples import SANDBOX_TIMEOUT, Sample, by_name, canned, load
from tests.contracts.shape import shape_mismatches

SAMPLES = load("kaiten")
BY_NAME = by_name(SAMPLES)
TOKEN = "ksh_contract_token_0123456789"


def replay_hook(monkeypatch: pytest.MonkeyPatch, server: ReplayServer) -> KaitenHook:
    return KaitenHook(kaiten_conn_id=replay_connection(monkeypatch, server, "kaiten", TOKEN))


def check_returned(result: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        assert {key: getattr(result, key) for key in expected} == expected
    elif isinstance(expected, str):
        assert expected in result
    else:
        assert result == expected


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_hook_reads_the_documented_answer(sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sample.hook
    with ReplayServer(canned(sample)) as server:
        call_as_documented(replay_hook(monkeypatch, server), spec, "Kaiten", check_returned)
    [received] = server.received
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (received.method, received.path) == (sample.request["method"], sample.request["path"])
    if spec.get("same_request", True):
        assert received.query == sample.request.get("query", {})
        assert received.body == sample.request.get("body")


def _sandbox_request(sandbox: Sandbox, sample: Sample) -> requests.Response:
    app = sandbox.app("kaiten")
    assert isinstance(app, KaitenApp)
    block = sample.sandbox
    app.configure(block.get("settings", {}))
    for record in block.get("seed", []):
        app.seed(**record)
    fault = block.get("fault")
    if fault is not None and fault["kind"] == "server_error":
        sandbox.inject("kaiten", ServerError(fault["status"], body=fault.get("body")))
    elif fault is not None:
        sandbox.inject("kaiten", RateLimit(retry_after=fault["retry_after"]))
    token = {"default": app.token, "readonly": app.readonly_token}.get(block.get("token", "default"))
    request = sample.request
    body = request.get("body")
    payload: dict[str, Any] = {}
    if isinstance(body, str):
        payload = {"data": body.encode(), "headers": {"Content-Type": "application/json"}}
    elif body is not None:
        payload = {"json": body}
    headers = {"Authorization": f"Bearer {token or block['token']}"} | payload.pop("headers", {})
    url = sandbox.base_url("kaiten") + request["path"]
    return requests.request(
        request["method"], url, params=request.get("query"), headers=headers, timeout=SANDBOX_TIMEOUT, **payload
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_sandbox_answers_in_the_documented_shape(sample: Sample, sandbox: Sandbox) -> None:
    response = _sandbox_request(sandbox, sample)
    assert response.status_code == sample.status, response.text
    documented = sample.response.get("headers") or {}
    for name, value in documented.items():
        assert name in response.headers, f"{name} missing from {dict(response.headers)}"
        if name.lower() == "content-type":
            assert response.headers[name].split(";")[0] == value
    if sample.body is None:
        assert response.content == b""
    elif isinstance(sample.body, str):
        assert not response.headers["Content-Type"].startswith("application/")
        assert response.text
    else:
        answer = response.json()
        assert shape_mismatches(sample.body, answer) == []
        present = [key for key in sample.sandbox.get("absent", []) if key in answer]
        assert present == [], f"the vendor leaves {present} out here"
        if "code" in sample.body:
            # Clients branch on the code, so the sandbox must use the vendor's, not only its type.
            assert answer["code"] == sample.body["code"]
            locations = [item.get("location") for item in sample.body.get("errors") or []]
            assert [item.get("location") for item in answer.get("errors") or []] == locations
    assert len(sandbox.journal("kaiten")) == 1


def test_samples_cover_every_documented_answer() -> None:
    """Each status the contract lists for get/update-customer has a sample (plus 429 and a proxy 502)."""
    by_method: dict[str, set[int]] = {}
    for sample in SAMPLES:
        by_method.setdefault(sample.request["method"], set()).add(sample.status)
    assert {200, 401, 403, 404, 500, 502} <= by_method["GET"]
    assert {204, 400, 403, 404, 422, 429} <= by_method["PUT"]


def test_merge_reads_the_documented_customer_and_writes_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-merge-write over the documented GET and PUT answers: unchanged fields go back as read."""
    with ReplayServer(canned(BY_NAME["get-customer-200"]), canned(BY_NAME["put-customer-204"])) as server:
        merged = replay_hook(monkeypatch, server).merge_customer("awesome-customer", name="Awesome Customer Ltd")
    assert [(r.method, r.path) for r in server.received] == [
        ("GET", "/api/customers/awesome-customer"),
        ("PUT", "/api/customers/awesome-customer"),
    ]
    assert server.received[1].body == BY_NAME["put-customer-204"].request["body"] | {"name": "Awesome Customer Ltd"}
    assert (merged.name, merged.domain) == ("Awesome Customer Ltd", "example.tld")


@pytest.mark.parametrize("read", ["get-customer-200-without-optional-fields", "get-customer-200-without-slug"])
def test_merge_over_a_customer_without_optional_fields(read: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fields the document leaves out stay out of the PUT (they are unset, not cleared by us)."""
    with ReplayServer(canned(BY_NAME[read]), canned(BY_NAME["put-customer-204"])) as server:
        merged = replay_hook(monkeypatch, server).merge_customer("awesome-customer", external_customer_id="crm-7")
    assert [r.method for r in server.received] == ["GET", "PUT"]
    assert server.received[1].path == "/api/customers/awesome-customer"
    assert server.received[1].body == {"name": "Awesome Customer", "externalCustomerId": "crm-7"}
    assert merged.slug == "awesome-customer"


def test_merge_stops_at_a_documented_404(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read's 404 ends the merge: nothing is written."""
    with ReplayServer(canned(BY_NAME["get-customer-404"])) as server, pytest.raises(errors.CrmNotFoundError):
        replay_hook(monkeypatch, server).merge_customer("no-such-customer", name="X")
    assert [r.method for r in server.received] == ["GET"]
