"""The Kaiten emulator over real HTTP: customers, full-replacement PUT, problem+json errors, auth, faults."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from airflow_provider_crm.sandbox import DropAfterStore, RateLimit, Sandbox, ServerError
from airflow_provider_crm.sandbox.vendors.kaiten.app import KaitenApp, decode_cursor, encode_cursor, has_scope
from airflow_provider_crm.sandbox.vendors.kaiten.errors import problem_type

from .client import TIMEOUT, KaitenClient

PROBLEM = "application/problem+json"


@pytest.fixture
def app(sandbox: Sandbox) -> KaitenApp:
    return sandbox.emulator(KaitenApp)


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Kaiten's problem: type by status, and an ``errorId`` only on a 500 (a withheld cause)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == problem_type(status)
    assert body["title"] and body["detail"]
    assert body["instance"].startswith("/api/")
    if status == 500:
        assert uuid.UUID(body["errorId"])
    else:
        assert "errorId" not in body
    return body


# Routes and success shapes.


def test_create_get_and_customer_shape(kaiten: KaitenClient, app: KaitenApp) -> None:
    created = kaiten.request(
        "POST",
        "/customers",
        json={"name": "Acme", "slug": "acme", "externalCustomerId": "crm-1", "domain": "acme.example"},
    )
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/customers/acme"
    customer = created.json()
    assert set(customer) == {
        "id",
        "name",
        "slug",
        "externalCustomerId",
        "domain",
        "createdAt",
        "createdBy",
        "updatedAt",
        "updatedBy",
    }
    assert uuid.UUID(customer["id"])
    assert (customer["slug"], customer["externalCustomerId"], customer["domain"]) == (
        "acme",
        "crm-1",
        "acme.example",
    )
    assert "integrations" not in customer  # left out when there are none
    assert set(customer["createdBy"]) == {"id", "name"}
    assert customer["createdAt"].endswith("Z")

    fetched = kaiten.request("GET", "/customers/acme")
    assert fetched.status_code == 200
    assert fetched.json() == customer
    stored = app.state.get("acme")
    assert stored is not None and app.render(stored) == customer
    assert [record["slug"] for record in app.state.customers()] == ["acme"]


def test_create_generates_a_free_slug_from_the_name(kaiten: KaitenClient) -> None:
    first = kaiten.request("POST", "/customers", json={"name": "Café Crème Ltd"})
    second = kaiten.request("POST", "/customers", json={"name": "Café Crème Ltd"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["slug"] == "cafe-creme-ltd"
    assert second.json()["slug"] == "cafe-creme-ltd-2"
    assert "domain" not in first.json()
    assert first.json()["externalCustomerId"] is None


def test_list_pages_with_cursor(kaiten: KaitenClient, app: KaitenApp) -> None:
    slugs = [f"customer-{index}" for index in range(5)]
    for slug in slugs:
        app.seed(slug, slug.title())
    whole = kaiten.request("GET", "/customers").json()
    assert [item["slug"] for item in whole["items"]] == slugs
    assert whole["hasMore"] is False and "nextCursor" not in whole

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = kaiten.request("GET", "/customers", params=params).json()
        seen += [item["slug"] for item in page["items"]]
        if not page["hasMore"]:
            assert "nextCursor" not in page
            break
        params = {"limit": 2, "cursor": page["nextCursor"]}
    assert seen == slugs


def test_cursor_survives_deleting_the_last_customer_seen(kaiten: KaitenClient, app: KaitenApp) -> None:
    for slug in ("aa", "bb", "cc"):
        app.seed(slug, slug)
    page = kaiten.request("GET", "/customers", params={"limit": 1}).json()
    assert kaiten.request("DELETE", "/customers/aa").status_code == 204
    rest = kaiten.request("GET", "/customers", params={"cursor": page["nextCursor"]}).json()
    assert [item["slug"] for item in rest["items"]] == ["bb", "cc"]
    assert decode_cursor(encode_cursor(42)) == 42
    assert decode_cursor("not a cursor!") is None


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"cursor": "bm9wZQ"}, "query.cursor"),
    ],
)
def test_list_rejects_bad_parameters_with_422(kaiten: KaitenClient, params: dict[str, Any], location: str) -> None:
    body = assert_problem(kaiten.request("GET", "/customers", params=params), 422, "UNPROCESSABLE")
    assert [error["location"] for error in body["errors"]] == [location]


def test_list_accepts_the_limit_bounds(kaiten: KaitenClient) -> None:
    for limit in (1, 200):
        assert kaiten.request("GET", "/customers", params={"limit": limit}).status_code == 200


def test_delete_then_404(kaiten: KaitenClient, app: KaitenApp) -> None:
    app.seed("gone", "Gone")
    deleted = kaiten.request("DELETE", "/customers/gone")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_problem(kaiten.request("DELETE", "/customers/gone"), 404, "DeleteCustomer.NotFound")
    assert app.state.count() == 0


# PUT: full replacement.


def test_put_replaces_fully_and_answers_204_with_an_empty_body(kaiten: KaitenClient, app: KaitenApp) -> None:
    before = app.seed("acme", "Acme", external_customer_id="crm-1", domain="acme.example")
    response = kaiten.request("PUT", "/customers/acme", json={"name": "Acme Corp"})
    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Type" not in response.headers
    stored = app.state.get("acme")
    assert stored is not None
    assert stored["name"] == "Acme Corp"
    assert stored["externalCustomerId"] is None  # cleared because omitted
    assert stored["domain"] is None  # cleared because omitted
    assert stored["updatedAt"] > before["updatedAt"]
    assert stored["createdAt"] == before["createdAt"]
    assert stored["updatedBy"] == app.service_account
    fetched = kaiten.request("GET", "/customers/acme").json()
    assert "domain" not in fetched
    assert fetched["externalCustomerId"] is None


def test_put_sets_every_field_and_accepts_the_stored_slug_and_integrations(
    kaiten: KaitenClient, app: KaitenApp
) -> None:
    app.seed("acme", "Acme")
    body = {
        "name": "Acme",
        "slug": "acme",
        "integrations": {},
        "externalCustomerId": "crm-9",
        "domain": "acme-corp.example.com",
    }
    assert kaiten.request("PUT", "/customers/acme", json=body).status_code == 204
    stored = app.state.get("acme")
    assert stored is not None
    assert (stored["externalCustomerId"], stored["domain"]) == ("crm-9", "acme-corp.example.com")
    assert kaiten.request("PUT", "/customers/acme", json={"name": "A", "externalCustomerId": None}).ok


@pytest.mark.parametrize(
    ("body", "locations"),
    [
        ({}, ["body"]),
        ({"name": ""}, ["body.name"]),
        ({"name": 7}, ["body.name"]),
        ({"name": "A", "domain": "Acme.Example"}, ["body.domain"]),
        ({"name": "A", "domain": "localhost"}, ["body.domain"]),
        ({"name": "A", "domain": "acme.example\n"}, ["body.domain"]),
        ({"name": "A", "domain": None}, ["body.domain"]),
        ({"name": "A", "externalCustomerId": 5}, ["body.externalCustomerId"]),
        ({"name": "A", "integrations": []}, ["body.integrations"]),
        ({"name": "A", "id": "x", "createdAt": "y"}, ["body.id", "body.createdAt"]),
        ({"name": "", "domain": "bad", "extra": True}, ["body.extra", "body.name", "body.domain"]),
        ({"name": "A", "domain": None}, ["body.domain"]),
    ],
)
def test_put_validation_reports_one_item_per_problem(
    kaiten: KaitenClient, app: KaitenApp, body: dict[str, Any], locations: list[str]
) -> None:
    app.seed("acme", "Acme", domain="acme.example")
    problem = assert_problem(kaiten.request("PUT", "/customers/acme", json=body), 422, "UNPROCESSABLE")
    assert [error["location"] for error in problem["errors"]] == locations
    # value is left out when there is none (a missing property, an explicit null), as Kaiten does.
    for error, sent in zip(problem["errors"], [_sent_value(body, loc) for loc in locations], strict=True):
        assert set(error) == ({"location", "message", "value"} if sent is not None else {"location", "message"})
    stored = app.state.get("acme")
    assert stored is not None and stored["domain"] == "acme.example"


def _sent_value(body: dict[str, Any], location: str) -> Any:
    return body.get(location.removeprefix("body."))


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("slug", "other", "UpdateCustomer.SlugNotRenameable"),
        ("integrations", {"crm": {"external_id": "x"}}, "UpdateCustomer.IntegrationsNotSettable"),
    ],
)
def test_put_refuses_changing_slug_or_setting_integrations(
    kaiten: KaitenClient, app: KaitenApp, key: str, value: Any, code: str
) -> None:
    app.seed("acme", "Acme", integrations={"crm": {"external_id": "x", "metadata": {}}})
    problem = assert_problem(kaiten.request("PUT", "/customers/acme", json={"name": "Other", key: value}), 422, code)
    assert "errors" not in problem
    # Refused before the lookup: an unknown customer gets the same answer, not a 404.
    assert_problem(kaiten.request("PUT", "/customers/nobody", json={"name": "Other", key: value}), 422, code)
    stored = app.state.get("acme")
    assert stored is not None and stored["name"] == "Acme"


def test_put_keeps_integrations_it_does_not_carry(kaiten: KaitenClient, app: KaitenApp) -> None:
    links = {"kaiten.integration.crm.attio": {"external_id": "rec_1", "metadata": {}}}
    app.seed("acme", "Acme", integrations=links)
    assert kaiten.request("PUT", "/customers/acme", json={"name": "Acme 2", "integrations": {}}).status_code == 204
    assert kaiten.request("GET", "/customers/acme").json()["integrations"] == links


def test_put_unknown_slug_is_404(kaiten: KaitenClient) -> None:
    body = assert_problem(
        kaiten.request("PUT", "/customers/nobody", json={"name": "X"}), 404, "UpdateCustomer.NotFound"
    )
    assert body["instance"] == "/api/customers/nobody"
    assert body["detail"] == 'Customer with slug "nobody" not found'


def test_get_unknown_slug_is_customer_not_found(kaiten: KaitenClient) -> None:
    body = assert_problem(kaiten.request("GET", "/customers/nobody"), 404, "Customer.NotFound")
    assert body["type"] == "https://tools.ietf.org/html/rfc7231#section-6.5.4"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"NaN"])
def test_malformed_body_is_400(kaiten: KaitenClient, app: KaitenApp, raw: bytes) -> None:
    app.seed("acme", "Acme")
    response = kaiten.request("PUT", "/customers/acme", data=raw, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "VALIDATION")


def test_non_object_body_is_422(kaiten: KaitenClient) -> None:
    body = assert_problem(kaiten.request("POST", "/customers", json=["Acme"]), 422, "UNPROCESSABLE")
    assert body["errors"][0]["location"] == "body"


def test_create_conflicts_and_limits_are_409_with_distinct_codes(kaiten: KaitenClient, app: KaitenApp) -> None:
    app.seed("acme", "Acme")
    taken = kaiten.request("POST", "/customers", json={"name": "A", "slug": "acme"})
    assert_problem(taken, 409, "CreateCustomer.SlugConflict")
    app.configure({"customer_limit": 1})
    assert_problem(
        kaiten.request("POST", "/customers", json={"name": "B"}), 409, "CreateCustomer.EntitlementLimitReached"
    )
    assert app.state.count() == 1


def test_create_validates_the_slug(kaiten: KaitenClient) -> None:
    for slug in ("a", "-ab", "Ab", "a" * 101):
        body = assert_problem(
            kaiten.request("POST", "/customers", json={"name": "A", "slug": slug}), 422, "UNPROCESSABLE"
        )
        assert body["errors"][0]["location"] == "body.slug"
    extra = kaiten.request("POST", "/customers", json={"name": "A", "integrations": {}})
    assert assert_problem(extra, 422, "UNPROCESSABLE")["errors"][0]["location"] == "body.integrations"


# Routing.


def test_unknown_route_and_wrong_method(sandbox: Sandbox, kaiten: KaitenClient) -> None:
    assert_problem(kaiten.request("GET", "/licenses"), 404, "Route.NotFound")
    response = kaiten.request("PATCH", "/customers/acme", json={})
    assert_problem(response, 405, "Route.MethodNotAllowed")
    assert response.headers["Allow"] == "DELETE, GET, PUT"
    # Without /api nothing matches, as on a real deployment.
    token = sandbox.token("kaiten")
    bare = requests.get(
        sandbox.base_url("kaiten") + "/customers",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert bare.status_code == 404


# Auth.


@pytest.mark.parametrize(
    ("authorization", "code", "detail_part"),
    [
        (None, "Auth.MissingAuthorizationHeader", "Missing"),
        ("Bearer", "Auth.UnknownAuthorizationHeader", "format"),
        ("Token ksh_sandbox_kaiten_token_0123456789", "Auth.UnknownAuthorizationHeader", "format"),
        ("Bearer ksh_wrong", "Auth.InvalidToken", "Invalid"),
        ("Bearer ksm_platform_credential_0123", "Auth.InvalidToken", "Core API"),
        ("Bearer whsec_signing_secret", "Auth.InvalidToken", "webhook signing secret"),
    ],
)
def test_bad_credentials_are_401(sandbox: Sandbox, authorization: str | None, code: str, detail_part: str) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    url = sandbox.base_url("kaiten") + "/api/customers"
    response = requests.get(url, headers=headers, timeout=TIMEOUT)
    body = assert_problem(response, 401, code)
    assert detail_part in body["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert sandbox.journal("kaiten")[-1].authorized is False


def test_readonly_token_reads_but_cannot_write(sandbox: Sandbox, app: KaitenApp) -> None:
    app.seed("acme", "Acme", domain="acme.example")
    reader = KaitenClient(sandbox, "ksh_sandbox_kaiten_readonly_0123456789")
    assert app.readonly_token == "ksh_sandbox_kaiten_readonly_0123456789"
    assert reader.request("GET", "/customers/acme").status_code == 200
    assert reader.request("GET", "/customers").status_code == 200
    for method, path in (("PUT", "/customers/acme"), ("POST", "/customers"), ("DELETE", "/customers/acme")):
        response = reader.request(method, path, json={"name": "Hacked"})
        body = assert_problem(response, 403, "Auth.MissingScope")
        assert body["detail"] == "missing required scope: write:customers"
    stored = app.state.get("acme")
    assert stored is not None and (stored["name"], stored["domain"]) == ("Acme", "acme.example")


def test_scopes_follow_kaiten_rules(kaiten: KaitenClient, app: KaitenApp) -> None:
    app.seed("acme", "Acme")
    app.configure({"scopes": ["read:customers"]})
    assert_problem(kaiten.request("PUT", "/customers/acme", json={"name": "B"}), 403, "Auth.MissingScope")
    app.configure({"scopes": ["write:*"]})
    assert kaiten.request("GET", "/customers/acme").status_code == 200
    assert kaiten.request("PUT", "/customers/acme", json={"name": "B"}).status_code == 204
    app.reset()
    assert app.scopes == ("read:customers", "write:customers")
    assert has_scope(["write:customers"], "read:customers")
    assert has_scope(["read:*"], "read:customers")
    assert not has_scope(["read:*"], "write:customers")
    assert not has_scope(["write:instances"], "read:customers")


def test_settings_are_checked(app: KaitenApp) -> None:
    for options in (
        {"scopes": "read:customers"},
        {"readonly_token": ""},
        {"customer_limit": True},
        {"nope": 1},
    ):
        with pytest.raises(ValueError):
            app.configure(options)


# Faults and headers.


def test_rate_limit_fault_is_a_429_problem(sandbox: Sandbox, kaiten: KaitenClient, app: KaitenApp) -> None:
    app.seed("acme", "Acme")
    sandbox.inject("kaiten", RateLimit(retry_after=0.5))
    response = kaiten.request("PUT", "/customers/acme", json={"name": "B"})
    assert_problem(response, 429, "TOO_MANY_REQUESTS")
    assert response.headers["Retry-After"] == "0.5"
    sandbox.inject("kaiten", RateLimit(retry_after=1, send_retry_after_header=False))
    response = kaiten.request("GET", "/customers")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    stored = app.state.get("acme")
    assert stored is not None and stored["name"] == "Acme"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "INTERNAL"),
        (502, "UNKNOWN"),
        (503, "UNAVAILABLE"),
        (504, "UNKNOWN"),
    ],
)
def test_server_error_fault_is_a_problem(sandbox: Sandbox, kaiten: KaitenClient, status: int, code: str) -> None:
    sandbox.inject("kaiten", ServerError(status))
    assert_problem(kaiten.request("POST", "/customers", json={"name": "A"}), status, code)
    assert sandbox.state("kaiten").count() == 0


def test_server_error_fault_with_raw_body(sandbox: Sandbox, kaiten: KaitenClient) -> None:
    sandbox.inject("kaiten", ServerError(502, body="<html>Bad Gateway</html>"))
    response = kaiten.request("GET", "/customers")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>Bad Gateway</html>"


def test_drop_after_store_keeps_the_replacement(sandbox: Sandbox, kaiten: KaitenClient, app: KaitenApp) -> None:
    app.seed("acme", "Acme", domain="acme.example")
    sandbox.inject("kaiten", DropAfterStore(method="PUT"))
    with pytest.raises(requests.ConnectionError):
        kaiten.request("PUT", "/customers/acme", json={"name": "Acme 2"})
    stored = app.state.get("acme")
    assert stored is not None and (stored["name"], stored["domain"]) == ("Acme 2", None)
    entry = sandbox.journal("kaiten")[-1]
    assert (entry.status, entry.stored, entry.fault) == (None, True, "drop_after_store")
    # PUT is idempotent: the retry gives the same result.
    assert kaiten.request("PUT", "/customers/acme", json={"name": "Acme 2"}).status_code == 204


def test_every_answer_carries_x_request_id(sandbox: Sandbox, kaiten: KaitenClient, app: KaitenApp) -> None:
    app.seed("acme", "Acme")
    sandbox.inject("kaiten", RateLimit(retry_after=0))
    responses = [
        kaiten.request("GET", "/customers"),
        kaiten.request("GET", "/customers"),
        kaiten.request("PUT", "/customers/acme", json={"name": "B"}),
        kaiten.request("GET", "/customers/nobody"),
        requests.get(kaiten.base_url + "/customers", timeout=TIMEOUT),
    ]
    assert [response.status_code for response in responses] == [429, 200, 204, 404, 401]
    ids = [response.headers["x-request-id"] for response in responses]
    assert ids == [entry.request_id for entry in sandbox.journal("kaiten")]


def test_a_500_carries_the_request_id_as_error_id(sandbox: Sandbox, kaiten: KaitenClient) -> None:
    sandbox.inject("kaiten", ServerError(500))
    response = kaiten.request("GET", "/customers")
    assert response.json()["errorId"] == response.headers["x-request-id"]


def test_seed_validates(app: KaitenApp) -> None:
    app.seed("acme", "Acme")
    for args in (("acme", "Again"), ("A", "Bad slug"), ("ok-slug", ""), ("ok-slug", "X", None, "nodot")):
        with pytest.raises(ValueError):
            app.seed(*args)


def test_control_endpoints_see_the_emulator(sandbox: Sandbox, app: KaitenApp) -> None:
    app.seed("acme", "Acme")
    state = requests.get(f"{sandbox.url}/_sandbox/state/kaiten", timeout=TIMEOUT).json()
    assert [customer["slug"] for customer in state["customers"]] == ["acme"]
    health = requests.get(f"{sandbox.url}/_sandbox/health", timeout=TIMEOUT).json()
    assert health["vendors"]["kaiten"] == {"path": "/kaiten"}
    sandbox.reset("kaiten")
    assert app.state.count() == 0
