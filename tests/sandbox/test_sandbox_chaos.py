"""Chaos mode over real HTTP: seeded decisions, the rate, each kind on the wire, switches and control."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_crm.sandbox import (
    CHAOS_KINDS,
    Chaos,
    GatewayPage,
    MangledJson,
    RateLimit,
    Sandbox,
    chaos_from_dict,
    fault_from_dict,
)
from airflow_provider_crm.sandbox.mangle import malformed, truncated
from airflow_provider_crm.sandbox.vendors.microbase.app import MicroBaseApp

from .client import TIMEOUT, authorized

WRITES: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "kustomer": ("/v1/klasses/orders", lambda i: {"title": f"order {i}"}),
    "kaiten": ("/api/customers", lambda i: {"name": f"Customer {i}"}),
    "microbase": ("/services/customer/v1/customer.create", lambda i: {"email": f"c{i}@example.com"}),
    "hubspot": ("/crm/v3/objects/orders", lambda i: {"properties": {"hs_order_name": f"order {i}"}}),
}
READS = {
    "kustomer": "/v1/klasses/orders",
    "kaiten": "/api/customers",
    "microbase": "/services/customer/v1/customer.list",
    "hubspot": "/crm/v3/objects/orders",
}
PROCESSED = {"drop_after_store", "slow", "malformed_json", "truncated_json"}


def only(kind: str, **options: Any) -> Chaos:
    """Chaos that faults every eligible request with one kind."""
    return Chaos(seed=1, rate=1.0, mix={kind: 1.0}, **options)


def write(sandbox: Sandbox, vendor: str, i: int = 0, timeout: float = TIMEOUT) -> requests.Response:
    path, body = WRITES[vendor]
    with authorized(sandbox, vendor) as client:
        return client.post(path, json=body(i), timeout=timeout)


# Decisions.


def test_decide_is_a_pure_function_of_seed_vendor_and_index() -> None:
    plan = Chaos(seed=7).plan("kustomer", 500)
    assert plan == Chaos(seed=7).plan("kustomer", 500)
    assert [Chaos(seed=7).decide("kustomer", n) for n in (499, 3, 250)] == [plan[499], plan[3], plan[250]]
    assert plan[100:] == Chaos(seed=7).plan("kustomer", 400, start=100)
    assert plan != Chaos(seed=8).plan("kustomer", 500)
    assert plan != Chaos(seed=7).plan("hubspot", 500)
    assert any(plan) and all(decision.n == n for n, decision in enumerate(plan) if decision is not None)


def test_the_mix_changes_kinds_but_not_which_requests_are_faulted() -> None:
    every = Chaos(seed=3).plan("kaiten", 300)
    drops = Chaos(seed=3, mix={"drop_after_store": 1}).plan("kaiten", 300)
    assert [d is None for d in every] == [d is None for d in drops]
    assert {d.kind for d in drops if d is not None} == {"drop_after_store"}
    assert {d.kind for d in every if d is not None} == set(CHAOS_KINDS)


def test_rate_and_default_mix_over_many_decisions() -> None:
    plan = Chaos(seed=42).plan("microbase", 10_000)
    kinds = Counter(d.kind for d in plan if d is not None)
    assert 900 <= sum(kinds.values()) <= 1100
    assert set(kinds) == set(CHAOS_KINDS) and min(kinds.values()) > 80
    details = [d for d in plan if d is not None]
    assert {d.status for d in details if d.kind == "server_error"} == {500, 502, 503, 504}
    assert {d.status for d in details if d.kind == "gateway_page"} == {502, 504}
    assert all(0.05 <= (d.retry_after or 0) <= 0.2 for d in details if d.kind == "rate_limit")
    assert Chaos(seed=1, rate=0).plan("kustomer", 200) == [None] * 200


@pytest.mark.parametrize(
    "options",
    [
        {"rate": 1.5},
        {"rate": -0.1},
        {"mix": {"meteor": 1}},
        {"mix": {"slow": 0}},
        {"mix": {"slow": -1}},
        {"retry_after": (0.3, 0.1)},
        {"slow_seconds": -1},
        {"server_statuses": (404,)},
        {"gateway_statuses": ()},
        {"path_pattern": "("},
    ],
)
def test_invalid_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Chaos(seed=1, **options)


def test_settings_round_trip_through_json() -> None:
    chaos = Chaos(seed=5, rate=0.2, mix={"slow": 2, "rate_limit": 1}, retry_after=(0.1, 0.1), methods=("post",))
    assert chaos.methods == ("POST",)
    assert chaos_from_dict(json.loads(json.dumps(chaos.to_dict()))) == chaos
    assert chaos_from_dict({"seed": 1}) == Chaos(seed=1) == Chaos(1, 0.1, {kind: 1 for kind in CHAOS_KINDS})
    for bad in ({"rate": 0.1}, {"seed": 1, "volume": 11}, {"seed": 1, "retry_after": 0.1}):
        with pytest.raises(ValueError):
            chaos_from_dict(bad)


# Live requests follow the decisions.


def test_live_requests_follow_the_plan_and_replay_with_the_same_seed(crm_sandbox: Sandbox) -> None:
    fast = {"rate_limit": 1, "server_error": 1, "gateway_page": 1}

    def run(seed: int) -> list[str | None]:
        crm_sandbox.reset()
        crm_sandbox.chaos("kaiten", Chaos(seed=seed, rate=0.5, mix=fast))
        with authorized(crm_sandbox, "kaiten") as client:
            for _ in range(40):
                client.get(READS["kaiten"], timeout=TIMEOUT)
        return [entry.fault for entry in crm_sandbox.journal("kaiten")]

    first = run(9)
    expected = [d.label if d is not None else None for d in Chaos(seed=9, rate=0.5, mix=fast).plan("kaiten", 40)]
    assert first == expected
    assert run(9) == first
    assert run(10) != first


def test_rate_is_respected_over_2000_requests(crm_sandbox: Sandbox) -> None:
    chaos = Chaos(seed=2024, rate=0.1, slow_seconds=0.0)
    crm_sandbox.chaos("kustomer", chaos)
    dropped = 0
    with authorized(crm_sandbox, "kustomer") as client:
        for _ in range(2000):
            try:
                client.get(READS["kustomer"], timeout=TIMEOUT)
            except requests.ConnectionError:
                dropped += 1
    expected = Counter(d.kind for d in chaos.plan("kustomer", 2000) if d is not None)
    stats = crm_sandbox.chaos_stats("kustomer")
    assert crm_sandbox.chaos_requests("kustomer") == 2000
    assert stats == {kind: expected[kind] for kind in CHAOS_KINDS}
    assert 160 <= sum(stats.values()) <= 240
    assert dropped == stats["drop_before_store"] + stats["drop_after_store"]
    journaled = Counter(entry.fault for entry in crm_sandbox.journal("kustomer") if entry.fault)
    assert journaled == {f"chaos:{kind}": count for kind, count in stats.items() if count}


# Each kind on the wire, and whether the write was applied.


@pytest.mark.parametrize("kind", CHAOS_KINDS)
def test_each_kind_applies_the_write_or_not(crm_sandbox: Sandbox, kind: str) -> None:
    crm_sandbox.chaos("kustomer", only(kind, slow_seconds=2.0))
    with contextlib.suppress(requests.ConnectionError, requests.Timeout):
        write(crm_sandbox, "kustomer", timeout=0.1 if kind == "slow" else TIMEOUT)
    state = crm_sandbox.kustomer.state
    deadline = time.monotonic() + 15
    # A slow write lands after the client gave up; its journal entry comes after the store.
    while kind == "slow" and not crm_sandbox.journal("kustomer") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.count() == (1 if kind in PROCESSED else 0)
    [entry] = crm_sandbox.journal("kustomer")
    assert (entry.fault, entry.stored) == (f"chaos:{kind}", kind in PROCESSED)
    assert crm_sandbox.chaos_stats("kustomer")[kind] == 1


@pytest.mark.parametrize("kind", ["drop_before_store", "drop_after_store"])
def test_drops_close_the_connection_without_an_answer(crm_sandbox: Sandbox, kind: str) -> None:
    crm_sandbox.chaos("hubspot", only(kind))
    with pytest.raises(requests.ConnectionError):
        write(crm_sandbox, "hubspot")
    assert crm_sandbox.journal("hubspot")[0].status is None
    assert crm_sandbox.state("hubspot").count() == (kind == "drop_after_store")


def test_slow_answers_after_slow_seconds_and_the_write_is_applied(crm_sandbox: Sandbox) -> None:
    crm_sandbox.chaos("kaiten", only("slow", slow_seconds=2.0))  # far past the 0.1 s timeout, even on a loaded machine
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        write(crm_sandbox, "kaiten", 1, timeout=0.1)
    answered = write(crm_sandbox, "kaiten", 2)
    assert time.monotonic() - started >= 2.0
    assert answered.status_code == 201
    deadline = time.monotonic() + 15  # the first write lands about when the second is answered
    while crm_sandbox.state("kaiten").count() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert crm_sandbox.state("kaiten").count() == 2


@pytest.mark.parametrize("vendor", list(WRITES))
@pytest.mark.parametrize("kind", ["malformed_json", "truncated_json"])
def test_mangled_bodies_are_200_with_broken_json_after_the_write(crm_sandbox: Sandbox, vendor: str, kind: str) -> None:
    crm_sandbox.chaos(vendor, only(kind))
    response = write(crm_sandbox, vendor)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert response.text.startswith("{")
    if kind == "malformed_json":
        assert response.text.endswith(",}")
    assert crm_sandbox.state(vendor).count() == 1
    entry = crm_sandbox.journal(vendor)[0]
    assert (entry.status, entry.stored, entry.response_body) == (200, True, response.text)


def test_server_errors_use_the_vendor_body_and_do_not_store(crm_sandbox: Sandbox) -> None:
    for status in (500, 502, 503, 504):
        crm_sandbox.chaos("kustomer", only("server_error", server_statuses=(status,)))
        response = write(crm_sandbox, "kustomer")
        assert response.status_code == status
        assert response.json()["errors"][0]["status"] == str(status), "JSON:API status is a string"
    crm_sandbox.chaos("kaiten", only("server_error", server_statuses=(503,)))
    response = write(crm_sandbox, "kaiten")
    assert (response.status_code, response.headers["Content-Type"]) == (503, "application/problem+json")
    assert response.json()["code"] == "UNAVAILABLE"
    assert crm_sandbox.kustomer.state.count() == crm_sandbox.state("kaiten").count() == 0


@pytest.mark.parametrize(
    ("vendor", "marker"),
    [("kustomer", "nginx"), ("kaiten", "nginx"), ("microbase", "nginx"), ("hubspot", "Cloudflare Ray ID")],
)
def test_gateway_pages_are_html(crm_sandbox: Sandbox, vendor: str, marker: str) -> None:
    crm_sandbox.chaos(vendor, only("gateway_page", gateway_statuses=(504,)))
    response = write(crm_sandbox, vendor)
    assert response.status_code == 504
    assert response.headers["Content-Type"].startswith("text/html")
    assert marker in response.text and "504" in response.text
    assert crm_sandbox.state(vendor).count() == 0


# Per-vendor 429s.


def _wait(chaos: Chaos, vendor: str) -> float:
    decision = chaos.decide(vendor, 0)
    assert decision is not None and decision.retry_after is not None
    return decision.retry_after


def test_kustomer_429_has_ratelimit_headers_and_a_small_wait(crm_sandbox: Sandbox) -> None:
    chaos = only("rate_limit")
    crm_sandbox.chaos("kustomer", chaos)
    response = write(crm_sandbox, "kustomer")
    wait = _wait(chaos, "kustomer")
    assert response.status_code == 429
    assert float(response.headers["Retry-After"]) == float(response.headers["x-ratelimit-reset"]) == wait
    assert 0.05 <= wait <= 0.2
    assert response.headers["x-ratelimit-remaining"] == "0" and response.headers["x-ratelimit-limit"]
    assert response.json()["errors"][0]["code"] == "too_many_requests"


def test_hubspot_429_names_the_ten_secondly_policy(crm_sandbox: Sandbox) -> None:
    chaos = only("rate_limit")
    crm_sandbox.chaos("hubspot", chaos)
    response = write(crm_sandbox, "hubspot")
    assert response.status_code == 429
    body = response.json()
    assert (body["policyName"], body["errorType"]) == ("TEN_SECONDLY_ROLLING", "RATE_LIMIT")
    assert int(response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) == round(_wait(chaos, "hubspot") * 1000)
    assert "Retry-After" not in response.headers


def test_kaiten_429_is_a_problem(crm_sandbox: Sandbox) -> None:
    crm_sandbox.chaos("kaiten", only("rate_limit", retry_after=(0.1, 0.1)))
    response = write(crm_sandbox, "kaiten")
    assert (response.status_code, response.headers["Content-Type"]) == (429, "application/problem+json")
    assert (response.json()["code"], response.headers["Retry-After"]) == ("TOO_MANY_REQUESTS", "0.1")


def test_microbase_429_has_its_ok_false_shape(crm_sandbox: Sandbox) -> None:
    crm_sandbox.chaos("microbase", only("rate_limit", retry_after=(0.2, 0.2)))
    response = write(crm_sandbox, "microbase")
    assert response.status_code == 429
    assert response.json() == {"ok": False, "error": "rate_limited"}
    assert response.headers["Retry-After"] == "0.2"
    assert crm_sandbox.state("microbase").count() == 0


# What chaos leaves alone, and switching it off.


def test_token_endpoints_are_spared_unless_included(crm_sandbox: Sandbox) -> None:
    microbase = crm_sandbox.app("microbase")
    assert isinstance(microbase, MicroBaseApp)
    url = crm_sandbox.base_url("microbase") + "/services/oauth/v2/token"
    form = {"grant_type": "client_credentials", "scope": "api"}
    auth = (microbase.client_id, microbase.client_secret)
    crm_sandbox.chaos("microbase", only("server_error"))
    assert requests.post(url, data=form, auth=auth, timeout=TIMEOUT).status_code == 200
    assert crm_sandbox.chaos_requests("microbase") == 0
    crm_sandbox.chaos("microbase", only("server_error", include_token_endpoints=True))
    assert requests.post(url, data=form, auth=auth, timeout=TIMEOUT).status_code >= 500
    assert crm_sandbox.chaos_requests("microbase") == 1


def test_methods_and_path_pattern_narrow_the_requests(crm_sandbox: Sandbox) -> None:
    crm_sandbox.chaos("kustomer", only("server_error", methods=("POST",), path_pattern=r"/klasses/orders$"))
    with authorized(crm_sandbox, "kustomer") as client:
        assert client.get(READS["kustomer"], timeout=TIMEOUT).status_code == 200
    assert write(crm_sandbox, "kustomer").status_code >= 500
    assert crm_sandbox.chaos_requests("kustomer") == 1


def test_an_injected_fault_wins_over_chaos(crm_sandbox: Sandbox) -> None:
    crm_sandbox.chaos("kustomer", only("server_error"))
    crm_sandbox.inject("kustomer", RateLimit(retry_after=0.1))
    assert write(crm_sandbox, "kustomer").status_code == 429
    assert write(crm_sandbox, "kustomer").status_code >= 500
    assert [entry.fault for entry in crm_sandbox.journal("kustomer")] == ["rate_limit", "chaos:server_error"]
    assert crm_sandbox.chaos_requests("kustomer") == 1


def test_turning_chaos_off_keeps_stats_and_reset_clears_them(crm_sandbox: Sandbox) -> None:
    crm_sandbox.chaos("kaiten", only("server_error"))
    assert write(crm_sandbox, "kaiten", 1).status_code >= 500
    crm_sandbox.chaos("kaiten", None)
    assert crm_sandbox.chaos_settings("kaiten") is None
    assert write(crm_sandbox, "kaiten", 2).status_code == 201
    assert crm_sandbox.chaos_stats("kaiten")["server_error"] == 1

    crm_sandbox.chaos("kaiten", only("server_error"))
    assert crm_sandbox.chaos_stats("kaiten")["server_error"] == 0
    crm_sandbox.reset()
    assert crm_sandbox.chaos_settings("kaiten") is None
    assert write(crm_sandbox, "kaiten", 3).status_code == 201
    assert crm_sandbox.chaos_stats("kaiten") == dict.fromkeys(CHAOS_KINDS, 0)
    assert crm_sandbox.chaos_requests("kaiten") == 0


def test_control_endpoint(crm_sandbox: Sandbox) -> None:
    url = f"{crm_sandbox.url}/_sandbox/chaos/hubspot"
    started = requests.post(url, json={"seed": 3, "rate": 1, "mix": {"server_error": 1}}, timeout=TIMEOUT)
    assert started.status_code == 201
    assert started.json()["enabled"] is True and started.json()["chaos"]["seed"] == 3
    assert crm_sandbox.chaos_settings("hubspot") == Chaos(seed=3, rate=1, mix={"server_error": 1})
    assert write(crm_sandbox, "hubspot").status_code >= 500
    report = requests.get(url, timeout=TIMEOUT).json()
    assert (report["requests"], report["stats"]["server_error"]) == (1, 1)

    stopped = requests.delete(url, timeout=TIMEOUT).json()
    assert (stopped["enabled"], stopped["stats"]["server_error"]) == (False, 1)
    assert write(crm_sandbox, "hubspot").status_code == 201

    assert requests.post(url, json={"seed": 1, "rate": 2}, timeout=TIMEOUT).status_code == 400
    assert requests.post(url, json={"rate": 0.1}, timeout=TIMEOUT).status_code == 400
    assert requests.post(f"{crm_sandbox.url}/_sandbox/chaos/nope", json={"seed": 1}, timeout=TIMEOUT).status_code == 404
    requests.post(url, json={"seed": 1}, timeout=TIMEOUT)
    requests.post(f"{crm_sandbox.url}/_sandbox/reset", timeout=TIMEOUT)
    assert requests.get(url, timeout=TIMEOUT).json()["enabled"] is False
    assert not crm_sandbox.journal()  # control requests are never journaled or faulted


# The faults chaos is built from, usable on their own.


def test_gateway_page_and_mangled_json_faults_can_be_injected(crm_sandbox: Sandbox) -> None:
    crm_sandbox.inject("kustomer", fault_from_dict({"kind": "gateway_page", "status": 502}))
    crm_sandbox.inject("kustomer", MangledJson(style="malformed"))
    first, second = write(crm_sandbox, "kustomer"), write(crm_sandbox, "kustomer", 1)
    assert (first.status_code, first.headers["Content-Type"].split(";")[0]) == (502, "text/html")
    assert second.status_code == 200 and second.text.endswith(",}")
    assert crm_sandbox.kustomer.state.count() == 1
    with pytest.raises(ValueError):
        MangledJson(style="shredded")
    with pytest.raises(ValueError):
        GatewayPage(status=404)


@pytest.mark.parametrize("payload", [b"", b"{}", b"[]", b'{"a": [1, 2]}', b"<html>oops</html>", b"123"])
def test_mangled_bytes_never_parse(payload: bytes) -> None:
    for broken in (truncated(payload), malformed(payload)):
        with pytest.raises(ValueError):
            json.loads(broken)


# The request body cap.


@pytest.mark.parametrize(
    ("vendor", "check"),
    [
        ("kustomer", lambda body: body["errors"][0]["status"] == "413"),
        ("kaiten", lambda body: body["code"] == "Request.TooLarge"),
        ("microbase", lambda body: body["ok"] is False and body["error"]["type"] == "entity.too.large"),
        ("hubspot", lambda body: body["status"] == "error" and "1000" in body["message"]),
    ],
)
def test_bodies_above_the_cap_get_the_vendor_413(vendor: str, check: Callable[[Any], bool]) -> None:
    with Sandbox(max_body_bytes=1000) as sandbox:
        path, _ = WRITES[vendor]
        with authorized(sandbox, vendor) as client:
            response = client.post(path, data=b"x" * 5000, timeout=TIMEOUT)
        assert response.status_code == 413
        assert check(response.json())
        [entry] = sandbox.journal(vendor)
        assert (entry.status, entry.body, entry.stored) == (413, None, False)
        assert write(sandbox, vendor).status_code in (200, 201)


def test_chunked_bodies_above_the_cap_are_refused() -> None:
    with Sandbox(max_body_bytes=1000) as sandbox, authorized(sandbox, "kustomer") as client:
        chunks = (b"x" * 400 for _ in range(5))
        response = client.post(WRITES["kustomer"][0], data=chunks, timeout=TIMEOUT)
        assert response.status_code == 413
        assert sandbox.kustomer.state.count() == 0


def test_journal_size_is_configurable_for_long_runs() -> None:
    with Sandbox(journal_size=3) as sandbox:
        for i in range(5):
            write(sandbox, "kaiten", i)
        assert [entry.status for entry in sandbox.journal()] == [201, 201, 201]
        assert sandbox.state("kaiten").count() == 5
