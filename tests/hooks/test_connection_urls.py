"""Where a connection sends requests (host, port and path, in the URI and the JSON form), and that
an error whose fix is in the connection (401, 403) names it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from airflow_provider_crm.errors import (
    CrmAuthenticationError,
    CrmConfigurationError,
    CrmPermissionError,
    restated,
)
from airflow_provider_crm.hooks.base import CrmHook
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.sandbox import Sandbox
from tests.conftest import use_connection

HOOKS: dict[str, type[CrmHook]] = {
    "kustomer": KustomerHook,
    "kaiten": KaitenHook,
    "microbase": MicroBaseHook,
    "hubspot": HubSpotHook,
}
KLASS = "ecomm-order"


def hook_for(vendor: str, conn_id: str) -> CrmHook:
    return HOOKS[vendor](conn_id)


def uri(vendor: str, sandbox: Sandbox, *, encoded_scheme: bool = False) -> str:
    """The sandbox as an Airflow connection URI: ``<type>://http://:<token>@127.0.0.1:<port>/<vendor>``
    (Airflow's form for a host with a protocol), or with the protocol percent-encoded in the host."""
    token = quote(sandbox.token(vendor), safe="")
    if encoded_scheme:
        return f"{vendor}://:{token}@http%3A%2F%2F127.0.0.1:{sandbox.port}/{vendor}"
    return f"{vendor}://http://:{token}@127.0.0.1:{sandbox.port}/{vendor}"


@pytest.mark.parametrize("vendor", sorted(HOOKS))
@pytest.mark.parametrize("encoded_scheme", [False, True], ids=["protocol-prefix", "encoded-host"])
def test_uri_form_keeps_port_and_path(vendor: str, encoded_scheme: bool, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_URI", uri(vendor, sandbox, encoded_scheme=encoded_scheme))
    hook = hook_for(vendor, "crm_uri")
    assert hook.connection.port == sandbox.port and hook.connection.schema == vendor  # as Airflow parsed it
    ok, message = hook.test_connection()
    assert ok, message
    [probe] = sandbox.journal(vendor)
    assert probe.authorized and probe.status == 200, "the probe reached the vendor's prefix on the sandbox's port"


def test_uri_form_writes_through_the_port(sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_URI", uri("kustomer", sandbox))
    hook = KustomerHook("crm_uri")
    assert hook.base_url() == sandbox.base_url("kustomer")
    created = hook.create_kobject(KLASS, title="Order 1", external_id="order-1")
    assert sandbox.state("kustomer").get(KLASS, created.id)["externalId"] == "order-1"


def test_json_form_port_and_schema(sandbox: Sandbox, monkeypatch) -> None:
    conn = {
        "conn_type": "kaiten",
        "host": "http://127.0.0.1",
        "port": sandbox.port,
        "schema": "kaiten",
        "password": sandbox.token("kaiten"),
    }
    hook = KaitenHook(use_connection(monkeypatch, "crm_json", conn))
    assert hook.base_url() == sandbox.base_url("kaiten") + "/api"
    sandbox.app("kaiten").seed("acme-corp", "Acme")
    hook.merge_customer("acme-corp", domain="acme.example")
    assert sandbox.state("kaiten").get("acme-corp")["domain"] == "acme.example"


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 18081, "https://127.0.0.1:18081"),  # no scheme means https, the port is kept
        ("https://crm.example.com/base/", 8443, "https://crm.example.com:8443/base"),
        ("https://crm.example.com:8443", 8443, "https://crm.example.com:8443"),  # same port twice is fine
        ("https://crm.example.com", 0, "https://crm.example.com"),  # 0 (sent by some UI forms) = no port
        ("https://[::1]", 9000, "https://[::1]:9000"),
    ],
)
def test_port_goes_into_the_base_url(host: str, port: int, expected: str, monkeypatch) -> None:
    conn = {"conn_type": "kustomer", "host": host, "port": port, "password": "k"}
    assert KustomerHook(use_connection(monkeypatch, "crm_port", conn)).base_url() == expected


def test_two_different_ports_are_refused(monkeypatch) -> None:
    conn = {"conn_type": "hubspot", "host": "https://crm.example.com:8443", "port": 9443, "password": "pat-1"}
    hook = HubSpotHook(use_connection(monkeypatch, "crm_ports", conn))
    with pytest.raises(CrmConfigurationError, match="port 8443 in its host and port 9443 in its port field"):
        hook.base_url()


@pytest.mark.parametrize("port", [-1, 70000])
def test_an_impossible_port_is_refused(port: int, monkeypatch) -> None:
    conn = {"conn_type": "kustomer", "host": "https://crm.example.com", "port": port, "password": "k"}
    hook = KustomerHook(use_connection(monkeypatch, "crm_bad_port", conn))
    with pytest.raises(CrmConfigurationError, match=f"has port {port}; use a number from 1 to 65535"):
        hook.base_url()


def test_a_port_without_a_host_is_refused_before_sending(monkeypatch) -> None:
    """Kustomer's region host and HubSpot's default host are used without the port: say so."""
    conn = {"conn_type": "hubspot", "port": 18081, "password": "pat-1"}
    hook = HubSpotHook(use_connection(monkeypatch, "crm_no_host", conn))
    with pytest.raises(CrmConfigurationError, match="has a port but no host"):
        hook.update_order("1", properties={"hs_order_name": "x"})


# -- errors whose fix is in the connection name it ---------------------------------------------


def test_401_names_the_connection(sandbox: Sandbox, monkeypatch) -> None:
    conn = sandbox.airflow_connection("kustomer") | {"password": "wrong-token-1234567"}
    hook = KustomerHook(use_connection(monkeypatch, "kustomer_nightly", conn))
    with pytest.raises(CrmAuthenticationError) as caught:
        hook.create_kobject(KLASS, title="t", external_id="o-1")
    assert caught.value.conn_id == "kustomer_nightly"
    assert str(caught.value).endswith("check the credentials in Airflow connection 'kustomer_nightly'")
    assert "wrong-token-1234567" not in str(caught.value)
    assert sandbox.state("kustomer").count() == 0


def test_403_names_the_connection(sandbox: Sandbox, monkeypatch) -> None:
    sandbox.app("kustomer").configure({"roles": ["org.permission.kobject.read"]})
    hook = KustomerHook(use_connection(monkeypatch, "kustomer_readonly", sandbox.airflow_connection("kustomer")))
    with pytest.raises(CrmPermissionError) as caught:
        hook.create_kobject(KLASS, title="t")
    assert "the credentials in Airflow connection 'kustomer_readonly' lack a role or scope" in str(caught.value)
    assert [entry.status for entry in sandbox.journal("kustomer")] == [403]


def test_refused_client_credentials_name_the_connection(sandbox: Sandbox, monkeypatch) -> None:
    """MicroBase asks for its OAuth token before the call: the refusal names the connection too."""
    app = sandbox.app("microbase")
    conn = {
        "conn_type": "microbase",
        "host": sandbox.base_url("microbase"),
        "login": app.client_id,
        "password": "not-the-secret-98765",
        "extra": {"token_url": "/services/oauth/v2/token"},
    }
    hook = MicroBaseHook(use_connection(monkeypatch, "shop_oauth", conn))
    with pytest.raises(CrmAuthenticationError, match="refused the client credentials") as caught:
        hook.update_customer("HkhhuXESl", first_name="Jo")
    assert "Airflow connection 'shop_oauth'" in str(caught.value)
    assert "not-the-secret-98765" not in str(caught.value)


def test_refused_oauth_refresh_names_the_connection(sandbox: Sandbox, monkeypatch) -> None:
    """HubSpot refreshes inside the request; the refusal leaves the hook naming the connection."""
    app = sandbox.app("hubspot")
    conn = {
        "conn_type": "hubspot",
        "host": sandbox.base_url("hubspot"),
        "extra": {"client_id": app.client_id, "client_secret": app.client_secret, "refresh_token": "revoked-1234"},
    }
    hook = HubSpotHook(use_connection(monkeypatch, "hubspot_oauth", conn))
    with pytest.raises(CrmAuthenticationError) as caught:
        hook.update_order("1000001", properties={"hs_order_name": "x"})
    assert "Airflow connection 'hubspot_oauth'" in str(caught.value)


def test_the_test_button_message_is_unchanged(sandbox: Sandbox, monkeypatch) -> None:
    """The UI already shows which connection it tests; its message stays the vendor's words."""
    conn = sandbox.airflow_connection("kaiten") | {"password": "ksh_wrong_token_1234"}
    ok, message = KaitenHook(use_connection(monkeypatch, "kaiten_test", conn)).test_connection()
    assert not ok and message.startswith("Kaiten refused the credentials (HTTP 401)")
    assert "Airflow connection" not in message


def test_an_error_names_the_first_connection_only() -> None:
    """The connection is named when the error is built; restating it elsewhere keeps that name."""
    inner = CrmAuthenticationError("Unauthorized", vendor="Kustomer", status=401, conn_id="inner")
    error = restated(inner, inner.message)
    assert str(error) == "Kustomer HTTP 401: Unauthorized — check the credentials in Airflow connection 'inner'"
