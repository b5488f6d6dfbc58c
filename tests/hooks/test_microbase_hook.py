"""MicroBaseHook against the MicroBase emulator: business errors arrive as HTTP 200 with ok:false."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmBadRequestError,
    CrmConfigurationError,
    CrmConflictError,
    CrmNotFoundError,
    CrmServerError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.sandbox import DropAfterStore, OperationFailure, Sandbox, ServerError
from tests.conftest import use_connection
from tests.contracts.replay import Canned, ReplayServer

UPDATE_PATH = "/services/customer/v1/customer.update"


@pytest.fixture
def customer_id(sandbox: Sandbox) -> str:
    sandbox.app("microbase").seed(email="other@example.com")
    return sandbox.app("microbase").seed(
        id="HkhhuXESl", email="john.doe@example.com", first_name="John", last_name="Doe", tags=["VIP"]
    )


@pytest.fixture
def hook(microbase_conn: str, customer_id: str) -> MicroBaseHook:
    return MicroBaseHook(microbase_conn_id=microbase_conn)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def stored(sandbox: Sandbox, customer_id: str = "HkhhuXESl") -> dict:
    return sandbox.state("microbase").get(customer_id)


def updates(sandbox: Sandbox) -> list:
    return [e for e in sandbox.journal("microbase") if e.path == UPDATE_PATH]


def test_update_sends_only_given_fields_and_parses_the_customer(hook: MicroBaseHook, sandbox: Sandbox) -> None:
    customer = hook.update_customer("HkhhuXESl", last_name="Smith", status="INACTIVE", tags=[])
    assert (customer.id, customer.last_name, customer.status, customer.tags) == (
        "HkhhuXESl",
        "Smith",
        "INACTIVE",
        [],
    )
    assert stored(sandbox)["firstName"] == "John"
    assert stored(sandbox)["tags"] == [], "an empty list replaces the tags"
    [entry] = updates(sandbox)
    assert entry.method == "POST"
    assert entry.body == {"id": "HkhhuXESl", "lastName": "Smith", "status": "INACTIVE", "tags": []}


@pytest.mark.parametrize(
    ("call", "error_class", "code", "data_check"),
    [
        (
            {"id": "missing-id", "firstName": "X"},
            CrmNotFoundError,
            "customer_not_found",
            lambda data: data == {"id": "missing-id"},
        ),
        (
            {"id": "HkhhuXESl", "email": "not-an-email"},
            CrmBadRequestError,
            "customer_invalid_email",
            lambda data: data == {"email": "not-an-email"},
        ),
        (
            {"id": "HkhhuXESl", "email": "other@example.com"},
            CrmConflictError,
            "duplicate_key",
            lambda data: "E11000" in data,
        ),
        (
            {"id": "HkhhuXESl", "status": "DELETED"},
            CrmBadRequestError,
            "validation_error",
            lambda data: isinstance(data, list) and "status" in data[0],
        ),
    ],
)
def test_ok_false_business_errors_are_typed_and_never_retried(
    hook: MicroBaseHook, sandbox: Sandbox, call: dict, error_class: type, code: str, data_check
) -> None:
    before = dict(stored(sandbox))
    with pytest.raises(error_class) as caught:
        hook.call("customer.update", call)  # the raw call, past local validation
    error = caught.value
    assert error.code == code and error.status == 200
    assert data_check(error.details)
    assert [e.status for e in updates(sandbox)] == [200]
    assert stored(sandbox) == before


def test_duplicate_email_through_the_typed_method(hook: MicroBaseHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmConflictError, match="duplicate_key"):
        hook.update_customer("HkhhuXESl", email="other@example.com")
    assert len(updates(sandbox)) == 1


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"status": "DELETED"}, "status"),
        ({"email": "no-at-sign"}, "not a valid email"),
        ({"first_name": ""}, "cannot clear a field"),
        ({"last_name": "  "}, "cannot clear a field"),
        ({"tags": ["ok", ""]}, "tags"),
        ({}, "nothing to update"),
    ],
)
def test_bad_input_sends_nothing(hook: MicroBaseHook, sandbox: Sandbox, fields: dict, fragment: str) -> None:
    with pytest.raises(CrmValidationError) as caught:
        hook.update_customer("HkhhuXESl", **fields)
    assert fragment in str(caught.value)
    assert "HkhhuXESl" in str(caught.value)
    assert sandbox.journal("microbase") == []


def test_invalid_token_is_401_and_not_retried(sandbox: Sandbox, customer_id: str, monkeypatch) -> None:
    conn = sandbox.airflow_connection("microbase") | {"password": "not-a-valid-token-123"}
    use_connection(monkeypatch, "microbase_default", conn)
    with pytest.raises(CrmAuthenticationError) as caught:
        MicroBaseHook().update_customer(customer_id, first_name="X")
    assert caught.value.status == 401 and caught.value.code == "invalid_token"
    assert len(updates(sandbox)) == 1


def test_500_with_object_error_is_retried_then_typed(hook: MicroBaseHook, sandbox: Sandbox, monkeypatch) -> None:
    sandbox.inject("microbase", ServerError(status=500, path_pattern="customer.update"))
    assert hook.update_customer("HkhhuXESl", first_name="Jo").first_name == "Jo"
    assert [e.status for e in updates(sandbox)] == [500, 200]

    conn = sandbox.airflow_connection("microbase") | {"extra": {"max_attempts": 2}}
    use_connection(monkeypatch, "microbase_default", conn)
    sandbox.inject("microbase", ServerError(status=500, count=3))
    with pytest.raises(CrmServerError) as caught:
        MicroBaseHook().update_customer("HkhhuXESl", first_name="Jim")
    assert caught.value.code and "Internal" in caught.value.message


def test_ok_false_without_a_code_is_an_api_error_asked_once(hook: MicroBaseHook, sandbox: Sandbox) -> None:
    """An operation failing on an error with no code (its database) answers 200 ok:false with only data."""
    before = dict(stored(sandbox))
    sandbox.inject("microbase", OperationFailure(message="connection 0 to mongo:27017 timed out"))
    with pytest.raises(CrmApiError) as caught:
        hook.update_customer("HkhhuXESl", first_name="Jo")
    error = caught.value
    assert type(error) is CrmApiError
    assert (error.status, error.code, error.details) == (200, None, "connection 0 to mongo:27017 timed out")
    [entry] = updates(sandbox)
    assert (entry.status, entry.fault, entry.response_body) == (
        200,
        "operation_failure",
        {"ok": False, "data": "connection 0 to mongo:27017 timed out"},
    )
    assert stored(sandbox) == before


def test_gateway_502_html_and_dropped_connection_are_retried(hook: MicroBaseHook, sandbox: Sandbox) -> None:
    sandbox.inject("microbase", ServerError(status=502))
    sandbox.inject("microbase", DropAfterStore())
    hook.update_customer("HkhhuXESl", first_name="Retried")
    assert [e.status for e in updates(sandbox)] == [502, None, 200]
    assert stored(sandbox)["firstName"] == "Retried"


@pytest.fixture
def oauth_conn(sandbox: Sandbox, monkeypatch, customer_id: str) -> str:
    app = sandbox.app("microbase")
    conn = {
        "conn_type": "microbase",
        "host": sandbox.base_url("microbase"),
        "login": app.client_id,
        "password": app.client_secret,
        "extra": {"token_url": "/services/oauth/v2/token"},
    }
    return use_connection(monkeypatch, "microbase_default", conn)


def test_client_credentials_token_is_cached_and_masked(oauth_conn: str, sandbox: Sandbox) -> None:
    from airflow_provider_crm._compat import redact

    hook = MicroBaseHook()
    hook.update_customer("HkhhuXESl", first_name="A")
    hook.update_customer("HkhhuXESl", first_name="B")
    assert sandbox.state("microbase").tokens_issued == 1
    [token_call] = [e for e in sandbox.journal("microbase") if e.path.endswith("/token")]
    assert token_call.method == "POST"
    assert token_call.body == "grant_type=client_credentials&scope=api"
    assert token_call.response_body["access_token"] == "<redacted>"
    assert token_call.header("Content-Type") == "application/x-www-form-urlencoded"
    token = hook.token_source()
    assert redact(token) == "***"
    assert redact(sandbox.app("microbase").client_secret) == "***"


def test_token_is_renewed_before_it_expires(oauth_conn: str, sandbox: Sandbox) -> None:
    # Renewal is due at 90% of the lifetime: 2 s leaves room for the first call on a busy machine.
    sandbox.app("microbase").configure({"token_ttl_seconds": 2})
    hook = MicroBaseHook()
    hook.update_customer("HkhhuXESl", first_name="A")
    expiry = sandbox.state("microbase").token_expiry(hook.token_source())
    assert expiry is not None
    wait_until(lambda: time.time() >= expiry)  # the service now refuses the first token
    issued = sandbox.state("microbase").tokens_issued  # 2 if the first call was slow enough to renew already
    hook.update_customer("HkhhuXESl", first_name="B")
    assert sandbox.state("microbase").tokens_issued == issued + 1
    assert all(e.status == 200 for e in updates(sandbox))


def test_token_refused_by_the_service_is_renewed_once(oauth_conn: str, sandbox: Sandbox) -> None:
    hook = MicroBaseHook()
    hook.update_customer("HkhhuXESl", first_name="A")
    sandbox.reset("microbase")  # the service forgets every token it issued
    sandbox.app("microbase").seed(id="HkhhuXESl", email="john.doe@example.com")
    assert hook.update_customer("HkhhuXESl", first_name="B").first_name == "B"
    assert [e.status for e in updates(sandbox)] == [401, 200]


def test_wrong_client_secret_is_an_auth_error(sandbox: Sandbox, oauth_conn: str, monkeypatch) -> None:
    conn = {
        "conn_type": "microbase",
        "host": sandbox.base_url("microbase"),
        "login": "sandbox-client",
        "password": "wrong-secret-0000",
        "extra": {"token_url": sandbox.base_url("microbase") + "/services/oauth/v2/token"},
    }
    use_connection(monkeypatch, "microbase_default", conn)
    ok, message = MicroBaseHook().test_connection()
    assert not ok and "refused the credentials" in message and "wrong-secret" not in message
    assert updates(sandbox) == []


def test_token_url_without_client_id_is_a_configuration_error(sandbox: Sandbox, monkeypatch) -> None:
    conn = sandbox.airflow_connection("microbase") | {"extra": {"token_url": "/services/oauth/v2/token"}}
    use_connection(monkeypatch, "microbase_default", conn)
    with pytest.raises(CrmConfigurationError, match="client id"):
        MicroBaseHook().update_customer("x", first_name="y")


def test_test_connection_is_read_only(hook: MicroBaseHook, sandbox: Sandbox) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert [e.path for e in sandbox.journal("microbase")] == ["/services/customer/v1/customer.list"]
    assert sandbox.state("microbase").update_events() == []


# The token endpoint's answer is not documented (only its request is, in the vendor's Postman
# collection): the hook must read either shape, and take any refusal as refused credentials.

TOKEN_PATH = "/services/oauth/v2/token"
UPDATED = {"ok": True, "customer": {"id": "HkhhuXESl", "email": "john.doe@gmail.com", "firstName": "Jo"}}


def _replay_conn(monkeypatch, server: ReplayServer, **extra: object) -> None:
    conn = {
        "conn_type": "microbase",
        "host": server.url,
        "login": "client-1",
        "password": "secret-1",
        "extra": {"token_url": TOKEN_PATH, **extra},
    }
    use_connection(monkeypatch, "microbase_default", conn)


@pytest.mark.parametrize(
    "answer",
    [
        {"ok": True, "token": "jwt-in-envelope"},
        {"access_token": "jwt-in-envelope", "token_type": "Bearer", "expires_in": 3600},
    ],
    ids=["microbase-envelope", "rfc6749-fields"],
)
def test_token_answer_is_read_in_either_shape(monkeypatch, answer: dict) -> None:
    with ReplayServer(Canned(200, answer), Canned(200, UPDATED)) as server:
        _replay_conn(monkeypatch, server)
        assert MicroBaseHook().update_customer("HkhhuXESl", first_name="Jo").first_name == "Jo"
    token_call, update_call = server.received
    assert (token_call.method, token_call.path, token_call.body) == (
        "POST",
        TOKEN_PATH,
        "grant_type=client_credentials&scope=api",
    )
    assert token_call.headers["Authorization"] == "Basic " + base64.b64encode(b"client-1:secret-1").decode()
    assert update_call.headers["Authorization"] == "Bearer jwt-in-envelope"


@pytest.mark.parametrize(
    "refusal",
    [
        Canned(200, {"ok": False, "error": "invalid_client"}),
        Canned(401, {"ok": False, "error": "invalid_client"}),
        Canned(400, {"error": "unsupported_grant_type"}),
    ],
    ids=["ok-false-on-200", "401", "400"],
)
def test_refused_client_credentials_are_an_auth_error_asked_once(monkeypatch, refusal: Canned) -> None:
    with ReplayServer(refusal) as server:
        _replay_conn(monkeypatch, server)
        with pytest.raises(CrmAuthenticationError, match="refused the client credentials") as caught:
            MicroBaseHook().update_customer("HkhhuXESl", first_name="Jo")
        ok, message = MicroBaseHook().test_connection()
    assert caught.value.status == refusal.status
    assert not ok and "refused the credentials" in message and "secret-1" not in message
    assert [r.path for r in server.received] == [TOKEN_PATH, TOKEN_PATH], "one token request per hook, no customer call"


def test_token_endpoint_server_error_stays_a_server_error(monkeypatch) -> None:
    with ReplayServer(Canned(500, {"ok": False, "error": {"message": "boom"}})) as server:
        _replay_conn(monkeypatch, server, max_attempts=1)
        with pytest.raises(CrmServerError):
            MicroBaseHook().update_customer("HkhhuXESl", first_name="Jo")
    assert [r.path for r in server.received] == [TOKEN_PATH]
