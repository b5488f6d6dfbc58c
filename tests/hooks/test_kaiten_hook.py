"""KaitenHook and its operator against the Kaiten emulator over loopback HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_crm.errors import (
    CrmAuthenticationError,
    CrmBadRequestError,
    CrmConfigurationError,
    CrmNotFoundError,
    CrmPermissionError,
    CrmServerError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.sandbox import DropAfterStore, Sandbox, ServerError
from tests.conftest import use_connection


@pytest.fixture
def hook(kaiten_conn: str, sandbox: Sandbox) -> KaitenHook:
    sandbox.app("kaiten").seed("acme-corp", "Acme", external_customer_id="crm-1", domain="acme.com")
    return KaitenHook(kaiten_conn_id=kaiten_conn)


def customer(sandbox: Sandbox, slug: str = "acme-corp") -> dict:
    return sandbox.state("kaiten").get(slug)


def puts(sandbox: Sandbox) -> list:
    return [e for e in sandbox.writes("kaiten") if e.method == "PUT"]


def test_base_url_gets_api_suffix_once(hook: KaitenHook, sandbox: Sandbox, monkeypatch) -> None:
    assert hook.base_url() == sandbox.base_url("kaiten") + "/api"
    conn = sandbox.airflow_connection("kaiten") | {"host": sandbox.base_url("kaiten") + "/api/"}
    use_connection(monkeypatch, "kaiten_default", conn)
    assert KaitenHook().base_url() == sandbox.base_url("kaiten") + "/api"


def test_get_customer(hook: KaitenHook) -> None:
    found = hook.get_customer("acme-corp")
    assert (found.slug, found.name, found.external_customer_id, found.domain) == (
        "acme-corp",
        "Acme",
        "crm-1",
        "acme.com",
    )


def test_update_is_a_full_replacement(hook: KaitenHook, sandbox: Sandbox) -> None:
    assert hook.update_customer("acme-corp", name="Acme Inc") is None
    stored = customer(sandbox)
    assert stored["name"] == "Acme Inc"
    assert stored["externalCustomerId"] is None and stored["domain"] is None
    [put] = puts(sandbox)
    assert put.body == {"name": "Acme Inc"}
    assert put.status == 204 and put.path == "/api/customers/acme-corp"


def test_merge_keeps_unset_fields(hook: KaitenHook, sandbox: Sandbox) -> None:
    merged = hook.merge_customer("acme-corp", external_customer_id="kobj-9")
    stored = customer(sandbox)
    assert (stored["name"], stored["externalCustomerId"], stored["domain"]) == ("Acme", "kobj-9", "acme.com")
    assert merged.external_customer_id == "kobj-9"
    assert [e.method for e in sandbox.journal("kaiten")] == ["GET", "PUT"]
    assert puts(sandbox)[0].body == {"name": "Acme", "externalCustomerId": "kobj-9", "domain": "acme.com"}


def test_merge_never_echoes_slug_or_integrations(sandbox: Sandbox, kaiten_conn: str) -> None:
    """Kaiten refuses a PUT carrying integrations (422); the read document has them, the write must not."""
    links = {"kaiten.integration.crm.attio": {"external_id": "rec_1", "metadata": {}}}
    sandbox.app("kaiten").seed("linked-co", "Linked", domain="linked.example", integrations=links)
    KaitenHook(kaiten_conn_id=kaiten_conn).merge_customer("linked-co", name="Linked Co")
    [put] = puts(sandbox)
    assert (put.status, put.body) == (204, {"name": "Linked Co", "domain": "linked.example"})
    assert customer(sandbox, "linked-co")["integrations"] == links


def test_merge_clears_a_field_given_as_none(hook: KaitenHook, sandbox: Sandbox) -> None:
    hook.merge_customer("acme-corp", domain=None)
    stored = customer(sandbox)
    assert stored["domain"] is None and stored["externalCustomerId"] == "crm-1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"domain": "Not A Domain"}, "domain"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"external_customer_id": 5}, "external_customer_id"),
    ],
)
def test_bad_changes_send_nothing(hook: KaitenHook, sandbox: Sandbox, changes: dict, field: str) -> None:
    with pytest.raises(CrmValidationError) as caught:
        hook.merge_customer("acme-corp", **changes)
    assert caught.value.field == field
    assert "acme-corp" in str(caught.value)
    assert sandbox.journal("kaiten") == []


@pytest.mark.parametrize("slug", ["Acme Corp", "a", "acme/../x", "-acme", "", "acme%2Fcorp"])
def test_bad_slugs_are_refused_before_sending(hook: KaitenHook, sandbox: Sandbox, slug: str) -> None:
    with pytest.raises(CrmValidationError):
        hook.get_customer(slug)
    assert sandbox.journal("kaiten") == []


def test_put_is_retried_on_503_and_on_a_dropped_connection(hook: KaitenHook, sandbox: Sandbox) -> None:
    sandbox.inject("kaiten", ServerError(status=503, method="PUT"))
    sandbox.inject("kaiten", DropAfterStore(method="PUT"))
    hook.update_customer("acme-corp", name="Acme Retried", domain="acme.com")
    assert [e.status for e in puts(sandbox)] == [503, None, 204]
    assert customer(sandbox)["name"] == "Acme Retried"


def test_persistent_500_is_a_typed_error(hook: KaitenHook, sandbox: Sandbox, monkeypatch) -> None:
    conn = sandbox.airflow_connection("kaiten") | {"extra": {"max_attempts": 2}}
    use_connection(monkeypatch, "kaiten_default", conn)
    sandbox.inject("kaiten", ServerError(status=500, count=5))
    with pytest.raises(CrmServerError) as caught:
        KaitenHook().update_customer("acme-corp", name="x")
    assert caught.value.code == "INTERNAL"
    assert caught.value.request_id == caught.value.details["errorId"]
    assert len(puts(sandbox)) == 2


def test_not_found_carries_problem_fields(hook: KaitenHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmNotFoundError) as caught:
        hook.update_customer("nobody-here", name="x")
    error = caught.value
    assert error.status == 404 and error.code == "UpdateCustomer.NotFound"
    assert 'Customer with slug "nobody-here" not found' in str(error)
    # No errorId on a 4xx (nothing was withheld): the request id comes from the x-request-id header.
    assert "errorId" not in error.details
    assert error.request_id == sandbox.journal("kaiten")[0].request_id
    assert len(sandbox.journal("kaiten")) == 1, "404 is never retried"


def test_read_not_found_has_the_get_code(hook: KaitenHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmNotFoundError) as caught:
        hook.get_customer("nobody-here")
    assert caught.value.code == "Customer.NotFound"
    assert len(sandbox.journal("kaiten")) == 1


def test_server_side_validation_and_malformed_body(hook: KaitenHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmBadRequestError) as caught:
        hook.transport.request("PUT", "/customers/acme-corp", json={"name": "x", "domain": "BAD"})
    assert caught.value.status == 422 and caught.value.code == "UNPROCESSABLE"
    assert "body.domain" in str(caught.value)
    with pytest.raises(CrmBadRequestError) as caught:
        hook.transport.request(
            "PUT", "/customers/acme-corp", data=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert caught.value.status == 400 and caught.value.code == "VALIDATION"
    assert customer(sandbox)["name"] == "Acme"


def test_wrong_and_readonly_tokens(hook: KaitenHook, sandbox: Sandbox, monkeypatch) -> None:
    use_connection(monkeypatch, "kaiten_default", sandbox.airflow_connection("kaiten") | {"password": "ksh_wrong_000"})
    with pytest.raises(CrmAuthenticationError) as caught:
        KaitenHook().get_customer("acme-corp")
    assert caught.value.code == "Auth.InvalidToken"
    readonly = sandbox.app("kaiten").readonly_token
    use_connection(monkeypatch, "kaiten_default", sandbox.airflow_connection("kaiten") | {"password": readonly})
    with pytest.raises(CrmPermissionError) as caught:
        KaitenHook().update_customer("acme-corp", name="x")
    assert caught.value.status == 403 and caught.value.code == "Auth.MissingScope"
    assert customer(sandbox)["name"] == "Acme"


@pytest.mark.parametrize("credential", ["ksm_platform_credential_123", "whsec_signing_secret_123"])
def test_platform_and_webhook_credentials_are_refused_before_sending(
    sandbox: Sandbox, monkeypatch, credential: str
) -> None:
    use_connection(monkeypatch, "kaiten_default", sandbox.airflow_connection("kaiten") | {"password": credential})
    with pytest.raises(CrmConfigurationError) as caught:
        KaitenHook().get_customer("acme-corp")
    assert credential.split("_")[0] + "_" in str(caught.value)
    assert credential not in str(caught.value)
    assert sandbox.journal("kaiten") == []
    ok, message = KaitenHook().test_connection()
    assert not ok and "access token" in message


def test_test_connection_is_read_only(hook: KaitenHook, sandbox: Sandbox) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    [entry] = sandbox.journal("kaiten")
    assert (entry.method, entry.path, entry.query) == ("GET", "/api/customers", {"limit": "1"})
