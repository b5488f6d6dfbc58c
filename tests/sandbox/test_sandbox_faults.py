"""Fault injection: each fault kind as a client sees it, and what the server kept."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_crm.sandbox import (
    DropAfterStore,
    DropBeforeStore,
    Latency,
    OperationFailure,
    RateLimit,
    Sandbox,
    ServerError,
    fault_from_dict,
)

from .client import TIMEOUT, KustomerClient

CREATE = "/v1/klasses/orders"


def test_rate_limit_answers_429_with_headers_and_does_not_store(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", RateLimit(retry_after=2, count=2))
    for _ in range(2):
        response = kustomer.post(CREATE, json={"title": "x"})
        assert response.status_code == 429
        assert response.headers["x-ratelimit-limit"] == "1000"
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert response.headers["x-ratelimit-reset"] == "2"
        assert response.headers["Retry-After"] == "2"
        error = response.json()["errors"][0]
        # JSON:API status as a string ("429"), as Kustomer's OpenAPI types it.
        assert (error["status"], error["code"], error["title"]) == (
            "429",
            "too_many_requests",
            "Too Many Requests",
        )
    assert kustomer.post(CREATE, json={"title": "x"}).status_code == 201
    assert crm_sandbox.kustomer.state.count() == 1
    assert [entry.fault for entry in crm_sandbox.journal()] == ["rate_limit", "rate_limit", None]


def test_rate_limit_header_variants(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", RateLimit(0.25, send_retry_after_header=False, reset_header=1_900_000_000))
    response = kustomer.get("/v1/auth/tokens/current")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.headers["x-ratelimit-reset"] == "1900000000"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_statuses(crm_sandbox: Sandbox, kustomer: KustomerClient, status: int) -> None:
    crm_sandbox.inject("kustomer", ServerError(status))
    response = kustomer.post(CREATE, json={"title": "x"})
    assert response.status_code == status
    assert response.json()["errors"][0]["status"] == str(status), "JSON:API status is a string"
    assert crm_sandbox.kustomer.state.count() == 0


def test_server_error_with_raw_body(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", ServerError(502, body="<html>Bad Gateway</html>"))
    response = kustomer.get("/v1/auth/tokens/current")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>Bad Gateway</html>"


def test_latency_delays_then_processes(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", Latency(0.3))
    started = time.monotonic()
    response = kustomer.post(CREATE, json={"title": "x"})
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 201
    assert crm_sandbox.journal()[-1].fault == "latency"
    with pytest.raises(requests.Timeout):
        crm_sandbox.inject("kustomer", Latency(2.0))  # far past the 0.1 s timeout, even on a loaded machine
        kustomer.get("/v1/auth/tokens/current", timeout=0.1)


def test_drop_after_store_keeps_the_write_but_sends_nothing(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", DropAfterStore())
    with pytest.raises(requests.ConnectionError):
        kustomer.post(CREATE, json={"title": "x", "externalId": "ext-1"})
    assert len(crm_sandbox.kustomer.state.kobjects("orders")) == 1
    entry = crm_sandbox.journal()[-1]
    assert (entry.status, entry.stored, entry.fault) == (None, True, "drop_after_store")
    # The client's recovery path: look the object up by externalId (same session reconnects).
    lookup = kustomer.get("/v1/klasses/orders/externalId=ext-1")
    assert lookup.status_code == 200
    assert lookup.json()["data"]["id"] == entry.response_body["data"]["id"]


def test_drop_before_store_stores_nothing(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", DropBeforeStore())
    with pytest.raises(requests.ConnectionError):
        kustomer.post(CREATE, json={"title": "x"})
    assert crm_sandbox.kustomer.state.count() == 0
    entry = crm_sandbox.journal()[-1]
    assert (entry.status, entry.stored, entry.fault) == (None, False, "drop_before_store")
    assert kustomer.post(CREATE, json={"title": "x"}).status_code == 201


def test_method_and_path_filters_choose_the_request(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", ServerError(503, method="put", path_pattern=r"^/v1/klasses/orders/"))
    kobject_id = kustomer.post(CREATE, json={"title": "x"}).json()["data"]["id"]
    assert kustomer.get(f"/v1/klasses/orders/{kobject_id}").status_code == 200
    assert kustomer.put(f"/v1/klasses/invoices/{kobject_id}", json={}).status_code == 404
    assert len(crm_sandbox.pending_faults("kustomer")) == 1
    assert kustomer.put(f"/v1/klasses/orders/{kobject_id}", json={}).status_code == 503
    assert crm_sandbox.pending_faults() == []


def test_latency_combines_with_an_outcome_fault(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", Latency(0.1))
    crm_sandbox.inject("kustomer", ServerError(500))
    started = time.monotonic()
    assert kustomer.get("/v1/auth/tokens/current").status_code == 500
    assert time.monotonic() - started >= 0.1
    assert crm_sandbox.journal()[-1].fault == "latency,server_error"


def test_faults_are_per_vendor(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("hubspot", ServerError(500))
    assert kustomer.get("/v1/auth/tokens/current").status_code == 200
    assert len(crm_sandbox.pending_faults("hubspot")) == 1


def test_fault_from_dict_validates() -> None:
    fault = fault_from_dict({"kind": "rate_limit", "count": 2, "retry_after": 1})
    assert fault == RateLimit(retry_after=1, count=2)
    assert fault.to_dict()["kind"] == "rate_limit"
    for bad in (
        {"kind": "explode"},
        {"kind": "latency", "secs": 1},
        {"kind": "server_error", "status": 404},
        {"kind": "latency", "count": 0},
        {"kind": "latency", "path_pattern": "("},
        {"kind": "operation_failure", "message": ""},
        {"kind": "operation_failure", "body": "<html>no</html>"},
        {"kind": "operation_failure", "status": 200},
    ):
        with pytest.raises(ValueError):
            fault_from_dict(bad)


# An operation failing on an error without a code (e.g. its database): each vendor's own answer.

MICROBASE_UPDATE = "/services/customer/v1/customer.update"
DB_TIMEOUT = "connection 0 to mongo:27017 timed out"


def _microbase_update(sandbox: Sandbox, customer_id: str) -> requests.Response:
    return requests.post(
        sandbox.base_url("microbase") + MICROBASE_UPDATE,
        json={"id": customer_id, "firstName": "Changed"},
        headers={"Authorization": f"Bearer {sandbox.token('microbase')}"},
        timeout=TIMEOUT,
    )


def test_operation_failure_is_microbase_ok_false_without_a_code(crm_sandbox: Sandbox) -> None:
    state = crm_sandbox.state("microbase")
    customer_id = crm_sandbox.app("microbase").seed(email="jane@example.com", first_name="Jane")  # type: ignore[attr-defined]
    before = state.customers()
    crm_sandbox.inject("microbase", OperationFailure(message=DB_TIMEOUT))

    response = _microbase_update(crm_sandbox, customer_id)
    # dasanor/microbase:src/modules/utils/index.js@ba350b4 genericErrorResponse: no code, data = message, HTTP 200.
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"ok": False, "data": DB_TIMEOUT}
    assert response.headers["X-Powered-By"] == "microbase"
    assert response.headers["x-request-id"]  # set by the framework before the operation answers
    assert (state.customers(), state.events) == (before, [])
    entry = crm_sandbox.journal("microbase")[-1]
    assert (entry.status, entry.stored, entry.fault) == (200, False, "operation_failure")

    # Consumed: the next update is processed.
    assert _microbase_update(crm_sandbox, customer_id).json()["ok"] is True
    assert state.get(customer_id)["firstName"] == "Changed"


def test_operation_failure_through_the_control_api(crm_sandbox: Sandbox) -> None:
    customer_id = crm_sandbox.app("microbase").seed(email="jane@example.com")  # type: ignore[attr-defined]
    body = {"kind": "operation_failure", "message": DB_TIMEOUT, "path_pattern": "customer\\.update$"}
    armed = requests.post(crm_sandbox.url + "/_sandbox/faults/microbase", json=body, timeout=TIMEOUT)
    assert armed.status_code == 201
    expected = OperationFailure(message=DB_TIMEOUT, path_pattern=body["path_pattern"])
    assert armed.json() == {"vendor": "microbase", **expected.to_dict()}
    refused = requests.post(crm_sandbox.url + "/_sandbox/faults/microbase", json={**body, "body": "x"}, timeout=TIMEOUT)
    assert refused.status_code == 400 and "body" in refused.json()["error"]

    info = requests.post(
        crm_sandbox.base_url("microbase") + "/services/customer/v1/customer.info",
        json={"id": customer_id},
        headers={"Authorization": f"Bearer {crm_sandbox.token('microbase')}"},
        timeout=TIMEOUT,
    )
    assert info.json()["ok"] is True, "the path filter spares other operations"
    assert _microbase_update(crm_sandbox, customer_id).json() == {"ok": False, "data": DB_TIMEOUT}
    assert crm_sandbox.pending_faults() == []


def test_operation_failure_is_a_server_error_elsewhere(crm_sandbox: Sandbox) -> None:
    crm_sandbox.inject("kaiten", OperationFailure(message=DB_TIMEOUT, status=503))
    response = requests.post(
        crm_sandbox.base_url("kaiten") + "/api/customers",
        json={"name": "Acme", "slug": "acme"},
        headers={"Authorization": f"Bearer {crm_sandbox.token('kaiten')}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 503
    assert crm_sandbox.state("kaiten").count() == 0
    assert crm_sandbox.journal("kaiten")[-1].fault == "operation_failure"
