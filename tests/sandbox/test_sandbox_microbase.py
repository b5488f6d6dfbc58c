"""The MicroBase emulator over real HTTP: RPC operations, ok:false on HTTP 200, OAuth tokens, faults."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_crm.sandbox import DropAfterStore, RateLimit, Sandbox, ServerError
from airflow_provider_crm.sandbox.vendors.microbase.app import MicroBaseApp
from airflow_provider_crm.sandbox.vendors.microbase.validation import is_email, js_truthy

from .client import MICROBASE_SERVICE as SERVICE
from .client import TIMEOUT, MicroBaseClient

TOKEN_URL = "/services/oauth/v2/token"
SHORT_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{8}")
CLIENT = ("sandbox-client", "sandbox-client-secret-0123456789")
GRANT = {"grant_type": "client_credentials", "scope": "api"}


@pytest.fixture
def app(sandbox: Sandbox) -> MicroBaseApp:
    return sandbox.emulator(MicroBaseApp)


@pytest.fixture
def john(app: MicroBaseApp) -> str:
    return app.seed(email="john.doe@example.com", first_name="John", last_name="Doe", tags=["VIP"])


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def ok_false(response: requests.Response, error: str) -> Any:
    """Business errors come back as HTTP 200 with ok:false."""
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body["ok"], body["error"]) == (False, error)
    return body.get("data")


# customer.update


def test_update_success_shape_and_event(
    sandbox: Sandbox, microbase: MicroBaseClient, app: MicroBaseApp, john: str
) -> None:
    response = microbase.call("customer.update", id=john, firstName="Johnny", status="INACTIVE")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["customer"] == {
        "email": "john.doe@example.com",
        "firstName": "Johnny",
        "lastName": "Doe",
        "status": "INACTIVE",
        "tags": ["VIP"],
        "addresses": [],
        "id": john,
    }
    assert app.state.get(john) == body["customer"]
    events = app.state.events
    assert [event["name"] for event in events] == ["CUSTOMERS.UPDATE"]
    assert events[0]["new"]["firstName"] == "Johnny"
    assert events[0]["data"] == {"id": john, "firstName": "Johnny", "status": "INACTIVE"}
    entry = sandbox.writes("microbase")[-1]
    assert (entry.status, entry.stored) == (200, True)


def test_update_writes_only_truthy_values(microbase: MicroBaseClient, app: MicroBaseApp, john: str) -> None:
    before = app.state.get(john)
    unchanged = microbase.call("customer.update", id=john, firstName="", lastName="", email="", status="")
    assert unchanged.json() == {"ok": True, "customer": before}
    cleared = microbase.call("customer.update", id=john, tags=[])
    assert cleared.json()["customer"]["tags"] == []
    # Extra properties are allowed and ignored.
    assert microbase.call("customer.update", id=john, nickname="JD", lastName="Dough").json()["ok"] is True
    stored = app.state.get(john)
    assert stored is not None and (stored["lastName"], stored["tags"]) == ("Dough", [])
    assert len(app.state.update_events()) == 3  # every save publishes, repeats included


def test_repeated_identical_updates_each_publish(microbase: MicroBaseClient, app: MicroBaseApp, john: str) -> None:
    for _ in range(3):
        assert microbase.call("customer.update", id=john, firstName="John").json()["ok"] is True
    assert [event["name"] for event in app.state.events] == ["CUSTOMERS.UPDATE"] * 3


def test_update_business_errors_are_http_200(microbase: MicroBaseClient, app: MicroBaseApp, john: str) -> None:
    other = app.seed(email="jane@example.com")
    assert ok_false(microbase.call("customer.update", id="nobody123"), "customer_not_found") == {"id": "nobody123"}
    assert ok_false(microbase.call("customer.update", id=john, email="not-an-email"), "customer_invalid_email") == {
        "email": "not-an-email"
    }
    assert (
        ok_false(microbase.call("customer.update", id=john, email="jane@example.com"), "duplicate_key")
        == 'E11000 duplicate key error index: customers.$email_1 dup key: { : "jane@example.com" }'
    )
    # The schema check (Ajv 4, as the framework runs it) reports only its first problem: the
    # required names, then the properties in the schema's order (id, email, firstName, lastName,
    # tags, status). Wording as the framework's own test expects it (src/test/testInMiddlewares.js).
    assert ok_false(microbase.call("customer.update", firstName=3), "validation_error") == [
        "payload: should have required property 'id'"
    ]
    assert ok_false(microbase.call("customer.update", id=john, status="FOO"), "validation_error") == [
        "status: `FOO` is not a valid enum value for path `status`."
    ]
    assert ok_false(microbase.call("customer.update", id=john, status=1, tags="VIP", email=5), "validation_error") == [
        "payload.email: should be string"
    ]
    assert ok_false(microbase.call("customer.update", id=john, status=1, tags="VIP"), "validation_error") == [
        "payload.tags: should be array"
    ]
    assert ok_false(microbase.call("customer.update", id=john, tags=["a", 1, 2]), "validation_error") == [
        "payload.tags[1]: should be string"
    ]
    assert app.state.events == []
    assert app.state.get(john) == app.state.find_by_email("john.doe@example.com")
    stored = app.state.get(other)
    assert stored is not None and stored["email"] == "jane@example.com"


def test_addresses_and_unset_fields_render_like_the_service(microbase: MicroBaseClient, app: MicroBaseApp) -> None:
    address = {"name": "Work", "firstName": "John", "address_1": "1650 Bolman Court", "postCode": "61701",
               "city": "Bloomington", "state": "Illinois", "country": "US", "id": "r1h2uQ4rx"}  # fmt: skip
    customer_id = app.seed("HkhhuXESl", email="a@example.com", addresses=[address])
    expected = {"email": "a@example.com", "status": "ACTIVE", "tags": [], "addresses": [address], "id": customer_id}
    # Unset names are left out, not null, as Mongoose's toJSON leaves them out.
    assert microbase.call("customer.info", id=customer_id).json() == {"ok": True, "customer": expected}
    updated = microbase.call("customer.update", id=customer_id, firstName="Al").json()["customer"]
    assert updated == {**expected, "firstName": "Al"}
    assert microbase.call("customer.list").json()["data"] == [{**expected, "firstName": "Al"}]
    with pytest.raises(ValueError, match="id"):
        app.seed(email="b@example.com", addresses=[{"name": "Home"}])


def test_update_to_own_email_is_not_a_duplicate(microbase: MicroBaseClient, john: str) -> None:
    assert microbase.call("customer.update", id=john, email="john.doe@example.com").json()["ok"] is True


def test_any_method_and_query_merge(microbase: MicroBaseClient, app: MicroBaseApp, john: str) -> None:
    url = f"{SERVICE}/customer.update"
    got = microbase.request("GET", url, params={"id": john, "firstName": "Q"})
    assert got.json()["customer"]["firstName"] == "Q"
    # The query string wins over the body.
    put = microbase.request("PUT", url, params={"firstName": "FromQuery"}, json={"id": john, "firstName": "FromBody"})
    assert put.json()["customer"]["firstName"] == "FromQuery"
    form = microbase.request("POST", url, data={"id": john, "tags[]": ["a", "b"]})
    assert form.json()["customer"]["tags"] == ["a", "b"]
    # A body without a JSON or form content type is ignored, as the body parsers do.
    ignored = microbase.request("POST", url, data=json.dumps({"id": john}), headers={"Content-Type": "text/plain"})
    assert ok_false(ignored, "validation_error") == ["payload: should have required property 'id'"]
    assert len(app.state.events) == 3
    # Express routes ignore case and one trailing slash.
    assert microbase.request("POST", f"{SERVICE}/Customer.Info/", json={"id": john}).json()["ok"] is True


def test_invalid_json_is_a_400_with_an_error_object(microbase: MicroBaseClient) -> None:
    response = microbase.request(
        "POST", f"{SERVICE}/customer.update", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert isinstance(body["error"], dict)
    assert body["error"]["type"] == "entity.parse.failed"
    assert body["error"]["status"] == 400


# customer.create, customer.info, customer.list


def test_create_info_and_list(microbase: MicroBaseClient, app: MicroBaseApp) -> None:
    created = microbase.call("customer.create", email="a@example.com", firstName="A", lastName="One", tags=["x"])
    customer = created.json()["customer"]
    assert SHORT_ID.fullmatch(customer["id"])
    assert (customer["status"], customer["addresses"]) == ("ACTIVE", [])
    ok_false(microbase.call("customer.create", email="a@example.com"), "duplicate_key")
    ok_false(microbase.call("customer.create", email="nope"), "customer_invalid_email")
    assert ok_false(microbase.call("customer.create", firstName="B"), "validation_error") == [
        "payload: should have required property 'email'"
    ]
    ok_false(microbase.call("customer.create", email="c@example.com", status="GONE"), "validation_error")
    microbase.call("customer.create", email="b@example.com", status="INACTIVE", tags=["y", "x"])
    assert [event["name"] for event in app.state.events] == ["CUSTOMERS.CREATE"] * 2

    info = microbase.call("customer.info", id=customer["id"]).json()
    assert info == {"ok": True, "customer": customer}
    assert ok_false(microbase.call("customer.info", id="missing"), "customer_not_found") == {"id": "missing"}
    assert ok_false(microbase.call("customer.info"), "validation_error") == [
        "payload: should have required property 'id'"
    ]

    listed = microbase.call("customer.list").json()
    assert listed["ok"] is True
    assert listed["page"] == {"limit": 10, "skip": 0}
    assert [item["email"] for item in listed["data"]] == ["a@example.com", "b@example.com"]
    # Every selectable field by default (customerModel.js selectableFields).
    assert set(listed["data"][0]) == {"id", "email", "firstName", "lastName", "tags", "status", "addresses"}
    paged = microbase.request("GET", f"{SERVICE}/customer.list", params={"limit": 1, "skip": 1}).json()
    assert (paged["page"], [item["email"] for item in paged["data"]]) == (
        {"limit": 1, "skip": 1},
        ["b@example.com"],
    )
    assert len(microbase.call("customer.list", status="INACTIVE").json()["data"]) == 1
    assert len(microbase.call("customer.list", tags="x,z").json()["data"]) == 2
    assert len(microbase.call("customer.list", email="a@example.com,zz@example.com").json()["data"]) == 1
    only_email = microbase.call("customer.list", fields="email").json()["data"][0]
    assert set(only_email) == {"email", "id"}
    assert microbase.call("customer.list", limit=500).json()["page"]["limit"] == 100


# Auth and OAuth.


def test_missing_or_wrong_token_is_401_invalid_token(sandbox: Sandbox, john: str) -> None:
    url = sandbox.base_url("microbase") + f"{SERVICE}/customer.update"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic c2FuZGJveDpzZWNyZXQ="}):
        response = requests.post(url, json={"id": john, "firstName": "X"}, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.json() == {"ok": False, "error": "invalid_token"}
    assert [entry.authorized for entry in sandbox.journal("microbase")] == [False] * 3


def test_unknown_operation_is_express_404_page(sandbox: Sandbox, microbase: MicroBaseClient) -> None:
    for response in (
        microbase.call("customer.explode"),
        requests.post(microbase.base_url + "/services/nope", timeout=TIMEOUT),
    ):
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<pre>Cannot POST /services/" in response.text


def test_oauth_flow_issues_working_tokens(sandbox: Sandbox, app: MicroBaseApp, john: str) -> None:
    anonymous = MicroBaseClient(sandbox)
    response = anonymous.request("POST", TOKEN_URL, auth=CLIENT, data=GRANT)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "access_token", "token_type", "expires_in"} and body["ok"] is True
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert (claims["sub"], claims["scope"]) == ("sandbox-client", "api")
    second = anonymous.request("POST", TOKEN_URL, auth=CLIENT, data=GRANT).json()["access_token"]
    assert second != body["access_token"]
    assert app.state.tokens_issued == 2

    authed = MicroBaseClient(sandbox, body["access_token"])
    assert authed.call("customer.update", id=john, lastName="Token").json()["ok"] is True


@pytest.mark.parametrize(
    ("auth", "data", "status", "error"),
    [
        (None, GRANT, 401, "invalid_client"),
        (("sandbox-client", "wrong"), GRANT, 401, "invalid_client"),
        (("someone", CLIENT[1]), GRANT, 401, "invalid_client"),
        (CLIENT, {"grant_type": "password", "scope": "api"}, 400, "unsupported_grant_type"),
        (CLIENT, {"scope": "api"}, 400, "unsupported_grant_type"),
        (CLIENT, {"grant_type": "client_credentials", "scope": "admin"}, 400, "invalid_scope"),
    ],
)
def test_oauth_errors(
    sandbox: Sandbox,
    app: MicroBaseApp,
    auth: tuple[str, str] | None,
    data: dict[str, str],
    status: int,
    error: str,
) -> None:
    response = MicroBaseClient(sandbox).request("POST", TOKEN_URL, auth=auth, data=data)
    assert response.status_code == status
    assert response.json() == {"ok": False, "error": error}
    assert app.state.tokens_issued == 0


def test_issued_tokens_expire(sandbox: Sandbox, app: MicroBaseApp, john: str) -> None:
    app.configure({"token_ttl_seconds": 5})  # room for the first call on a busy machine
    answer = MicroBaseClient(sandbox).request("POST", TOKEN_URL, auth=CLIENT, data=GRANT).json()
    assert answer["expires_in"] == 5
    client = MicroBaseClient(sandbox, answer["access_token"])
    assert client.call("customer.info", id=john).json()["ok"] is True
    expiry = app.state.token_expiry(answer["access_token"])
    assert expiry is not None
    wait_until(lambda: time.time() >= expiry)
    expired = client.call("customer.info", id=john)
    assert (expired.status_code, expired.json()) == (401, {"ok": False, "error": "invalid_token"})
    # The static token never expires.
    assert MicroBaseClient(sandbox, app.token).call("customer.info", id=john).status_code == 200


def test_settings_are_checked_and_reset(app: MicroBaseApp) -> None:
    for options in ({"token_ttl_seconds": 0}, {"client_secret": ""}, {"client_id": 3}):
        with pytest.raises(ValueError):
            app.configure(options)
    app.configure({"client_id": "other", "token_ttl_seconds": 5})
    app.issue_token()
    app.reset()
    assert (app.client_id, app.token_ttl_seconds, app.state.tokens_issued) == ("sandbox-client", 3600.0, 0)


# Faults and headers.


def test_rate_limit_fault(sandbox: Sandbox, microbase: MicroBaseClient, app: MicroBaseApp, john: str) -> None:
    sandbox.inject("microbase", RateLimit(retry_after=2))
    response = microbase.call("customer.update", id=john, firstName="X")
    assert response.status_code == 429
    assert response.json() == {"ok": False, "error": "rate_limited"}
    assert response.headers["Retry-After"] == "2"
    assert app.state.events == []


def test_server_error_500_has_an_error_object(sandbox: Sandbox, microbase: MicroBaseClient) -> None:
    sandbox.inject("microbase", ServerError(500))
    response = microbase.call("customer.list")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"ok": False, "error": {"message": "Internal error"}}


@pytest.mark.parametrize(("status", "title"), [(502, "502 Bad Gateway"), (503, "503 Service Temporarily Unavailable")])
def test_gateway_errors_are_nginx_html(sandbox: Sandbox, microbase: MicroBaseClient, status: int, title: str) -> None:
    sandbox.inject("microbase", ServerError(status))
    response = microbase.call("customer.list")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<html>\r\n<head><title>")
    assert f"<title>{status} " in response.text
    assert "<center>nginx</center>" in response.text


def test_server_error_with_raw_body(sandbox: Sandbox, microbase: MicroBaseClient) -> None:
    sandbox.inject("microbase", ServerError(504, body="upstream timed out"))
    response = microbase.call("customer.list")
    assert (response.status_code, response.text) == (504, "upstream timed out")


def test_drop_after_store_keeps_the_update(
    sandbox: Sandbox, microbase: MicroBaseClient, app: MicroBaseApp, john: str
) -> None:
    sandbox.inject("microbase", DropAfterStore(path_pattern=r"customer\.update$"))
    with pytest.raises(requests.ConnectionError):
        microbase.call("customer.update", id=john, firstName="Dropped")
    stored = app.state.get(john)
    assert stored is not None and stored["firstName"] == "Dropped"
    entry = sandbox.journal("microbase")[-1]
    assert (entry.status, entry.stored, entry.fault) == (None, True, "drop_after_store")
    # Retrying is safe: same values, one more event.
    assert microbase.call("customer.update", id=john, firstName="Dropped").json()["ok"] is True
    assert len(app.state.update_events()) == 2


def test_x_request_id_is_generated_or_suffixed(sandbox: Sandbox, microbase: MicroBaseClient) -> None:
    fresh = microbase.call("customer.list")
    assert SHORT_ID.fullmatch(fresh.headers["x-request-id"])
    chained = microbase.request("POST", f"{SERVICE}/customer.list", headers={"x-request-id": "caller-1"})
    prefix, _, suffix = chained.headers["x-request-id"].partition(":")
    assert prefix == "caller-1" and SHORT_ID.fullmatch(suffix)
    assert fresh.headers["X-Powered-By"] == "microbase"
    # The framework sets the id inside the operation's route, after the token check: a 401, an
    # unknown path and the gateway's own page carry none (src/modules/transports/http.js).
    unauthorized = requests.post(microbase.base_url + f"{SERVICE}/customer.list", timeout=TIMEOUT)
    unknown = microbase.call("customer.explode")
    sandbox.inject("microbase", ServerError(502))
    gateway = microbase.call("customer.list")
    assert [r.status_code for r in (unauthorized, unknown, gateway)] == [401, 404, 502]
    assert not any("x-request-id" in r.headers for r in (unauthorized, unknown, gateway))
    assert unauthorized.headers["X-Powered-By"] == unknown.headers["X-Powered-By"] == "microbase"
    assert "X-Powered-By" not in gateway.headers


def test_seed_and_helpers(app: MicroBaseApp) -> None:
    assert app.seed("HkhhuXESl", email="x@example.com") == "HkhhuXESl"
    assert SHORT_ID.fullmatch(app.seed(email="y@example.com"))
    for kwargs in (
        {"email": "x@example.com"},
        {"id": "HkhhuXESl", "email": "z@example.com"},
        {"email": "bad"},
        {},
        {"email": "q@example.com", "status": "GONE"},
    ):
        with pytest.raises(ValueError):
            app.seed(**kwargs)
    assert app.state.events == []
    assert app.state.snapshot()["tokens_issued"] == 0
    assert [js_truthy(value) for value in ("", "a", [], 0, None)] == [False, True, True, False, False]
    assert is_email("john.doe+tag@mail.example.com") and not is_email("a@b..c")
