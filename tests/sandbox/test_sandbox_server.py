"""Server behaviour shared by all vendors: journal, reset, control endpoints, keep-alive, CLI."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_crm.sandbox import DEFAULT_TOKENS, RateLimit, Sandbox, ServerError

from .client import TIMEOUT, KustomerClient

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_defaults_bind_loopback_with_long_tokens() -> None:
    with Sandbox() as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:")
        assert sandbox.base_url("kustomer") == f"{sandbox.url}/kustomer"
        assert sandbox.token("kustomer") == "sandbox-kustomer-token-0123456789"
        assert set(sandbox.vendors) == {"kustomer", "kaiten", "microbase", "hubspot"}
        assert all(len(token) >= 30 for token in DEFAULT_TOKENS.values())
        health_url = sandbox.url + "/_sandbox/health"
        assert requests.get(health_url, timeout=TIMEOUT).status_code == 200
    assert not sandbox.running
    with pytest.raises(requests.ConnectionError):
        requests.get(health_url, timeout=TIMEOUT)


def test_custom_tokens_and_unknown_vendors() -> None:
    with Sandbox(tokens={"kustomer": "another-long-token-value-000000000"}) as sandbox:
        url = sandbox.base_url("kustomer") + "/v1/auth/tokens/current"
        ok = requests.get(url, headers={"Authorization": "Bearer another-long-token-value-000000000"}, timeout=5)
        assert ok.status_code == 200
        with pytest.raises(KeyError):
            sandbox.base_url("zendesk")
    with pytest.raises(ValueError, match="zendesk"):
        Sandbox(tokens={"zendesk": "x"})


def test_journal_records_the_wire_request_and_redacts_credentials(
    crm_sandbox: Sandbox, kustomer: KustomerClient
) -> None:
    kustomer.post("/v1/klasses/orders", params={"dryRun": "no", "t": ["1", "2"]}, json={"title": "x"})
    kustomer.get("/v1/klasses/orders/externalId=a%2Fb")
    requests.get(crm_sandbox.base_url("kustomer") + "/v1/auth/tokens/current", timeout=TIMEOUT)

    create, lookup, anonymous = crm_sandbox.journal("kustomer")
    assert (create.vendor, create.method, create.path) == ("kustomer", "POST", "/v1/klasses/orders")
    assert create.target == "/kustomer/v1/klasses/orders?dryRun=no&t=1&t=2"
    assert create.query == {"dryRun": "no", "t": ["1", "2"]}
    assert create.body == {"title": "x"}
    assert (create.status, create.stored, create.authorized) == (201, True, True)
    assert create.header("authorization") == "<redacted>"
    assert create.header("content-type") == "application/json"
    assert create.response_body["data"]["attributes"]["title"] == "x"
    assert lookup.path == "/v1/klasses/orders/externalId=a%2Fb"
    assert lookup.segments == ("v1", "klasses", "orders", "externalId=a/b")
    assert (lookup.status, lookup.stored) == (404, False)
    assert anonymous.authorized is False and anonymous.header("Authorization") is None
    assert create.seq < lookup.seq < anonymous.seq
    assert [entry.method for entry in crm_sandbox.writes()] == ["POST"]
    assert crm_sandbox.token("kustomer") not in repr(crm_sandbox.journal())


def test_unknown_vendor_prefix_is_404_and_journaled(crm_sandbox: Sandbox) -> None:
    response = requests.get(crm_sandbox.url + "/zendesk/api/v2/tickets", timeout=TIMEOUT)
    assert response.status_code == 404
    entry = crm_sandbox.journal()[-1]
    assert entry.vendor is None and entry.path == "/zendesk/api/v2/tickets"


def test_reset_clears_state_journal_faults_and_settings(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    kustomer.post("/v1/klasses/orders", json={"title": "x", "externalId": "e"})
    crm_sandbox.inject("kustomer", ServerError(500))
    crm_sandbox.kustomer.create_limit_per_minute = 1
    crm_sandbox.reset()
    assert crm_sandbox.kustomer.state.count() == 0
    assert crm_sandbox.journal() == []
    assert crm_sandbox.pending_faults() == []
    assert crm_sandbox.kustomer.create_limit_per_minute is None
    assert kustomer.post("/v1/klasses/orders", json={"title": "x", "externalId": "e"}).status_code == 201


def test_control_endpoints(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    control = crm_sandbox.url + "/_sandbox"
    health = requests.get(control + "/health", timeout=TIMEOUT).json()
    assert health["status"] == "ok"
    assert health["vendors"]["kustomer"] == {"path": "/kustomer"}
    assert set(health["vendors"]) == {"kustomer", "kaiten", "microbase", "hubspot"}

    armed = requests.post(
        control + "/faults/kustomer",
        json={"kind": "rate_limit", "count": 2, "retry_after": 1},
        timeout=TIMEOUT,
    )
    assert armed.status_code == 201
    faults = requests.get(control + "/faults", timeout=TIMEOUT).json()["faults"]
    assert [(fault["vendor"], fault["kind"], fault["count"]) for fault in faults] == [("kustomer", "rate_limit", 2)]
    assert kustomer.post("/v1/klasses/orders", json={"title": "x"}).status_code == 429
    assert kustomer.post("/v1/klasses/orders", json={"title": "x"}).status_code == 429
    assert kustomer.post("/v1/klasses/orders", json={"title": "x", "externalId": "e"}).status_code == 201

    bad = requests.post(control + "/faults/kustomer", json={"kind": "nope"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    assert requests.post(control + "/faults/zendesk", json={}, timeout=TIMEOUT).status_code == 404

    journal = requests.get(control + "/journal", params={"vendor": "kustomer"}, timeout=TIMEOUT).json()
    assert [entry["status"] for entry in journal["entries"]] == [429, 429, 201]
    assert all(entry["headers"]["Authorization"] == "<redacted>" for entry in journal["entries"])
    writes = requests.get(control + "/journal", params={"writes": "1"}, timeout=TIMEOUT).json()["entries"]
    assert len(writes) == 3

    state = requests.get(control + "/state/kustomer", timeout=TIMEOUT).json()
    assert [record["externalId"] for record in state["klasses"]["orders"]] == ["e"]

    config = requests.post(control + "/config/kustomer", json={"create_limit_per_minute": 5}, timeout=TIMEOUT)
    assert config.status_code == 200 and config.json()["create_limit_per_minute"] == 5
    assert crm_sandbox.kustomer.create_limit_per_minute == 5
    assert requests.post(control + "/config/kustomer", json={"x": 1}, timeout=TIMEOUT).status_code == 400

    assert requests.post(control + "/reset", timeout=TIMEOUT).status_code == 200
    assert crm_sandbox.kustomer.state.count() == 0 and crm_sandbox.journal() == []
    assert requests.get(control + "/nothing", timeout=TIMEOUT).status_code == 404
    # Control requests are not journaled.
    assert crm_sandbox.journal() == []


def test_keep_alive_serves_many_requests_on_one_connection(crm_sandbox: Sandbox) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", crm_sandbox.port, timeout=TIMEOUT)
    auth = {"Authorization": f"Bearer {crm_sandbox.token('kustomer')}", "Content-Type": "application/json"}
    requests_to_send = [
        ("POST", "/kustomer/v1/klasses/orders", b'{"title": "a"}', auth, 201),
        ("POST", "/kustomer/v1/klasses/orders", b"{broken", auth, 400),
        ("GET", "/kustomer/v1/klasses/orders", None, {}, 401),
        ("GET", "/kustomer/v1/unknown", None, auth, 404),
        ("GET", "/_sandbox/health", None, {}, 200),
        ("GET", "/kustomer/v1/klasses/orders", None, auth, 200),
    ]
    try:
        first_socket = None
        for method, path, body, headers, status in requests_to_send:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            assert response.status == status, (method, path)
            assert int(response.headers["Content-Length"]) == len(payload)
            first_socket = first_socket or connection.sock
            assert connection.sock is first_socket, "server closed a keep-alive connection"
    finally:
        connection.close()


def test_requests_session_reuses_connections(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    for index in range(20):
        assert kustomer.post("/v1/klasses/orders", json={"title": f"o{index}"}).status_code == 201
    assert kustomer.get("/v1/klasses/orders").json()["meta"]["total"] == 20
    assert crm_sandbox.kustomer.state.count("orders") == 20


def test_chunked_request_body_is_read(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": '
        yield b'"chunked"}'

    response = kustomer.post("/v1/klasses/orders", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201
    assert response.json()["data"]["attributes"]["title"] == "chunked"
    assert kustomer.get("/v1/klasses/orders").json()["meta"]["total"] == 1


def test_stop_cuts_idle_keep_alive_connections(crm_sandbox: Sandbox) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", crm_sandbox.port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/_sandbox/health")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        assert connection.sock is not None
        crm_sandbox.stop()
        assert connection.sock.recv(1) == b""
    finally:
        connection.close()


def test_session_fixture_is_shared(crm_sandbox_session: Sandbox) -> None:
    crm_sandbox_session.reset()
    crm_sandbox_session.inject("kustomer", RateLimit(0))
    url = crm_sandbox_session.base_url("kustomer") + "/v1/auth/tokens/current"
    assert requests.get(url, timeout=TIMEOUT).status_code == 429
    crm_sandbox_session.reset()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    return env


def test_pytest_plugin_does_not_import_airflow() -> None:
    code = (
        "import sys, airflow_provider_crm.sandbox.pytest_plugin as p; "
        "assert 'airflow' not in sys.modules, 'airflow imported'; "
        "assert p.crm_sandbox and p.crm_sandbox_session"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), timeout=60)


def test_cli_prints_connection_details_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_crm.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        output = "".join(lines)
        url = output.split("listening on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert f"{url}/kustomer" in output and "sandbox-kustomer-token-0123456789" in output
        assert "AIRFLOW_CONN_KUSTOMER_DEFAULT=" in output and '"conn_type": "kustomer"' in output
        assert requests.get(url + "/_sandbox/health", timeout=TIMEOUT).json()["status"] == "ok"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
