"""HubSpotHook against the HubSpot emulator; every body we send is checked against HubSpot's spec."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import jsonschema
import pytest

from airflow_provider_crm.errors import (
    CrmNotFoundError,
    CrmRateLimitError,
    CrmServerError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.sandbox import DropAfterStore, HttpStatus, RateLimit, Sandbox, ServerError
from tests.conftest import use_connection

SPEC = json.loads((Path(__file__).parents[1] / "specs" / "hubspot-crm-orders-v3.openapi.json").read_text())
REQUEST_SCHEMAS = {
    ("PATCH", "/crm/v3/objects/orders/{orderId}"): "SimplePublicObjectInput",
    ("POST", "/crm/v3/objects/orders/batch/update"): "BatchInputSimplePublicObjectBatchInput",
    ("POST", "/crm/v3/objects/orders/batch/upsert"): "BatchInputSimplePublicObjectBatchInputUpsert",
    ("POST", "/crm/v3/objects/orders/batch/read"): "BatchReadInputSimplePublicObjectId",
}
ORDERS = "/crm/v3/objects/orders"


def spec_schema(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}


def assert_sent_bodies_match_spec(sandbox: Sandbox) -> int:
    """Validate every write that reached the server against the request schema the spec names."""
    checked = 0
    for entry in sandbox.writes("hubspot"):
        if entry.path.startswith(ORDERS + "/batch/"):
            key = ("POST", entry.path)
        elif entry.method == "PATCH":
            key = ("PATCH", ORDERS + "/{orderId}")
        else:
            continue
        assert SPEC["paths"][key[1]][key[0].lower()]["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{REQUEST_SCHEMAS[key]}"
        }
        jsonschema.validate(entry.body, spec_schema(REQUEST_SCHEMAS[key]))
        checked += 1
    return checked


@pytest.fixture
def hook(hubspot_conn: str) -> HubSpotHook:
    return HubSpotHook(hubspot_conn_id=hubspot_conn)


@pytest.fixture
def order_id(sandbox: Sandbox) -> str:
    return sandbox.app("hubspot").seed(
        {
            "hs_order_name": "Order 1042",
            "hs_external_order_id": "order-1042",
            "hs_fulfillment_status": "placed",
        }
    )


def stored(sandbox: Sandbox, order_id: str) -> dict:
    return sandbox.state("hubspot").get(order_id)["properties"]


def test_patch_serialises_every_kind_and_matches_the_spec(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    order = hook.update_order(
        order_id,
        {
            "hs_total_price": 19.5,
            "hs_is_gift": True,
            "hs_order_date": dt.date(2026, 3, 1),
            "hs_shipped_at": dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.timezone.utc),
            "hs_tags": ["vip", "rush"],
            "hs_fulfillment_status": None,  # left out: the stored value survives
        },
    )
    assert order.id == order_id
    props = stored(sandbox, order_id)
    assert props["hs_total_price"] == "19.5"
    assert props["hs_is_gift"] == "true"
    assert props["hs_order_date"] == "1772323200000"
    assert props["hs_shipped_at"] == "1772447400000"
    assert props["hs_tags"] == "vip;rush"
    assert props["hs_fulfillment_status"] == "placed"
    assert assert_sent_bodies_match_spec(sandbox) == 1


def test_clear_nulls_sends_empty_strings_which_clear(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    hook.update_order(order_id, {"hs_fulfillment_status": None}, clear_nulls=True)
    assert stored(sandbox, order_id).get("hs_fulfillment_status") in ("", None)
    assert sandbox.writes("hubspot")[0].body == {"properties": {"hs_fulfillment_status": ""}}


def test_id_property_addresses_by_unique_value_and_returns_internal_id(
    hook: HubSpotHook, sandbox: Sandbox, order_id: str
) -> None:
    order = hook.update_order("order-1042", {"kustomer_kobject_id": "abc"}, id_property="hs_external_order_id")
    assert order.id == order_id
    [entry] = sandbox.writes("hubspot")
    assert entry.path == f"{ORDERS}/order-1042" and entry.query == {"idProperty": "hs_external_order_id"}
    assert hook.get_order(order_id, properties=["kustomer_kobject_id"]).properties["kustomer_kobject_id"] == "abc"


def test_bad_values_are_refused_before_sending(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    with pytest.raises(CrmValidationError, match="hs_shipped_at"):
        hook.update_order(order_id, {"hs_shipped_at": dt.datetime(2026, 1, 1)})
    with pytest.raises(CrmValidationError, match="no properties"):
        hook.update_order(order_id, {"a": None})
    with pytest.raises(CrmValidationError, match="order_id"):
        hook.update_order("", {"a": "b"})
    assert sandbox.journal("hubspot") == []


def test_vendor_validation_errors_are_parsed(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    from airflow_provider_crm.errors import CrmBadRequestError

    with pytest.raises(CrmBadRequestError) as caught:
        hook.update_order(order_id, {"no_such_property": "x"})
    error = caught.value
    assert error.code == "VALIDATION_ERROR" and error.request_id
    assert "no_such_property" in str(error)
    assert len(sandbox.writes("hubspot")) == 1


def test_ten_secondly_429_waits_for_the_window_then_retries(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    sandbox.inject("hubspot", RateLimit(policy="TEN_SECONDLY_ROLLING", interval_ms=400, method="PATCH"))
    started = time.monotonic()
    hook.update_order(order_id, {"hs_order_name": "x"})
    assert time.monotonic() - started >= 0.4
    assert [e.status for e in sandbox.writes("hubspot")] == [429, 200]


def test_daily_429_fails_at_once(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    # A 30 s window: waiting for it before failing would blow the bound, which leaves a loaded machine headroom.
    sandbox.inject("hubspot", RateLimit(policy="DAILY", method="PATCH", count=3, interval_ms=30_000))
    started = time.monotonic()
    with pytest.raises(CrmRateLimitError, match="daily API limit is spent") as caught:
        hook.update_order(order_id, {"hs_order_name": "x"})
    assert time.monotonic() - started < 10.0
    assert caught.value.code == "DAILY"
    assert len(sandbox.writes("hubspot")) == 1


@pytest.mark.parametrize("status", [502, 503, 504, 524])
def test_gateway_errors_and_dropped_connections_are_retried(
    hook: HubSpotHook, sandbox: Sandbox, order_id: str, status: int
) -> None:
    fault = ServerError(status=status, method="PATCH") if status < 524 else HttpStatus(status=524, method="PATCH")
    sandbox.inject("hubspot", fault)
    sandbox.inject("hubspot", DropAfterStore(method="PATCH"))
    hook.update_order(order_id, {"hs_order_name": "retried"})
    assert [e.status for e in sandbox.writes("hubspot")] == [status, None, 200]
    assert stored(sandbox, order_id)["hs_order_name"] == "retried"


def test_423_locked_waits_at_least_two_seconds(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    sandbox.inject("hubspot", HttpStatus(status=423, method="PATCH"))
    started = time.monotonic()
    hook.update_order(order_id, {"hs_order_name": "unlocked"})
    assert time.monotonic() - started >= 2.0
    assert [e.status for e in sandbox.writes("hubspot")] == [423, 200]


def test_persistent_5xx_is_typed(hubspot_conn: str, sandbox: Sandbox, order_id: str, monkeypatch) -> None:
    use_connection(
        monkeypatch, "hubspot_default", sandbox.airflow_connection("hubspot") | {"extra": {"max_attempts": 2}}
    )
    sandbox.inject("hubspot", ServerError(status=500, count=5))
    with pytest.raises(CrmServerError) as caught:
        HubSpotHook().update_order(order_id, {"hs_order_name": "x"})
    assert caught.value.status == 500 and caught.value.request_id


def test_not_found(hook: HubSpotHook) -> None:
    with pytest.raises(CrmNotFoundError) as caught:
        hook.update_order("999999", {"hs_order_name": "x"})
    assert caught.value.code == "OBJECT_NOT_FOUND"


def test_batch_update_reports_each_refused_input(hook: HubSpotHook, sandbox: Sandbox) -> None:
    ids = [sandbox.app("hubspot").seed({"hs_order_name": f"o{i}"}) for i in range(3)]
    inputs = [
        {"id": ids[0], "properties": {"hs_total_price": 10}},
        {"id": "424242", "properties": {"hs_total_price": 11}},
        {"id": ids[2], "properties": {"hs_total_price": "not a number"}},
        {"id": ids[1], "properties": {"hs_fulfillment_status": "shipped"}},
    ]
    result = hook.batch_update_orders(inputs)
    assert sorted(result.written) == [0, 3]
    assert sorted(order.id for order in result.results) == sorted([ids[0], ids[1]])
    assert [(e.index, e.id, e.category) for e in result.errors] == [
        (1, "424242", "OBJECT_NOT_FOUND"),
        (2, ids[2], "VALIDATION_ERROR"),
    ]
    assert stored(sandbox, ids[0])["hs_total_price"] == "10"
    assert stored(sandbox, ids[1])["hs_fulfillment_status"] == "shipped"
    assert "hs_total_price" not in stored(sandbox, ids[2]), "a refused input is not applied"
    # The whole batch is refused (one bad value), then halves: [0, 1] (207: 1 is missing) and
    # [2, 3] (400 again), then 2 alone (400) and 3 alone (200).
    writes = sandbox.writes("hubspot")
    assert [(e.status, [i["id"] for i in e.body["inputs"]]) for e in writes] == [
        (400, [ids[0], "424242", ids[2], ids[1]]),
        (207, [ids[0], "424242"]),
        (400, [ids[2], ids[1]]),
        (400, [ids[2]]),
        (200, [ids[1]]),
    ]
    assert (result.requests, result.isolation_requests) == (5, 4)
    assert assert_sent_bodies_match_spec(sandbox) == 5


def test_batches_are_chunked_by_100_and_upsert_creates(hook: HubSpotHook, sandbox: Sandbox) -> None:
    inputs = [
        {
            "id": f"ext-{i}",
            "id_property": "hs_external_order_id",
            "properties": {"hs_order_name": f"Order {i}"},
        }
        for i in range(250)
    ]
    result = hook.batch_upsert_orders(inputs)
    assert result.ok and len(result.results) == 250
    assert all(order.new for order in result.results)
    assert [len(e.body["inputs"]) for e in sandbox.writes("hubspot")] == [100, 100, 50]
    assert sandbox.state("hubspot").count() == 250
    again = hook.batch_upsert_orders(inputs[:3])
    assert [order.new for order in again.results] == [False, False, False]
    assert sandbox.state("hubspot").count() == 250
    assert assert_sent_bodies_match_spec(sandbox) == 4


def test_batch_input_problems_are_refused_before_any_chunk_is_sent(hook: HubSpotHook, sandbox: Sandbox) -> None:
    inputs = [{"id": str(i), "properties": {"hs_order_name": "x"}} for i in range(150)]
    inputs[120]["properties"] = {"hs_order_name": object()}
    with pytest.raises(CrmValidationError, match="#120"):
        hook.batch_update_orders(inputs)
    with pytest.raises(CrmValidationError, match="id_property"):
        hook.batch_upsert_orders([{"id": "x", "properties": {"a": "b"}}])
    assert sandbox.journal("hubspot") == []


@pytest.fixture
def oauth_conn(sandbox: Sandbox, monkeypatch) -> str:
    app = sandbox.app("hubspot")
    conn = {
        "conn_type": "hubspot",
        "host": sandbox.base_url("hubspot"),
        "extra": {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "refresh_token": app.refresh_token,
        },
    }
    return use_connection(monkeypatch, "hubspot_default", conn)


class FakeClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_oauth_refresh_is_cached_renewed_from_expires_in_and_masked(
    oauth_conn: str, sandbox: Sandbox, order_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_crm._compat import redact
    from airflow_provider_crm.hooks import tokens

    clock = FakeClock()
    monkeypatch.setattr(tokens, "monotonic", clock)
    # HubSpot states the lifetime in expires_in; the hook renews 60 s (the margin) before it ends.
    # The sandbox's own expiry runs on the wall clock, far beyond this test.
    sandbox.app("hubspot").configure({"access_token_ttl_seconds": 900})
    start = clock.now
    hook = HubSpotHook()
    hook.update_order(order_id, {"hs_order_name": "a"})
    first = hook.token_source()
    clock.now = start + 839.5
    hook.update_order(order_id, {"hs_order_name": "b"})
    assert sandbox.state("hubspot").tokens_issued == 1
    assert hook.token_source() == first
    clock.now = start + 840.0
    hook.update_order(order_id, {"hs_order_name": "c"})
    hook.update_order(order_id, {"hs_order_name": "d"})
    assert sandbox.state("hubspot").tokens_issued == 2
    second = hook.token_source()
    assert second != first
    assert sandbox.app("hubspot").state.token_active(first), "renewed before the old token expired"

    token_call = ("POST", "/oauth/v1/token", 200)
    patch = ("PATCH", f"{ORDERS}/{order_id}", 200)
    sent = [(e.method, e.path, e.status) for e in sandbox.journal("hubspot")]
    assert sent == [token_call, patch, patch, token_call, patch, patch]
    assert all(e.authorized for e in sandbox.journal("hubspot") if e.method == "PATCH")
    assert stored(sandbox, order_id)["hs_order_name"] == "d"
    for secret in (
        first,
        second,
        sandbox.app("hubspot").client_secret,
        sandbox.app("hubspot").refresh_token,
    ):
        assert redact(secret) == "***"
    refreshes = [e for e in sandbox.journal("hubspot") if e.path == "/oauth/v1/token"]
    assert all("grant_type=refresh_token" in e.body for e in refreshes)


def test_low_burst_budget_slows_down_instead_of_hitting_429(hook: HubSpotHook, sandbox: Sandbox, order_id: str) -> None:
    # The connection allows 10/s; the server says 5 per second and enforces it.
    sandbox.app("hubspot").configure({"burst_limit": 5, "interval_ms": 1000})
    started = time.monotonic()
    for i in range(12):
        hook.update_order(order_id, {"hs_order_name": f"n{i}"})
    elapsed = time.monotonic() - started
    statuses = [e.status for e in sandbox.writes("hubspot")]
    # Unpaced, 12 calls at 10/s into a limit of 5/s draw about half a dozen 429s. Paced by the
    # advertised limit and X-HubSpot-RateLimit-Remaining, at most two at window edges on a loaded
    # machine (the sandbox counts a request when it handles it, up to tens of ms after it was sent).
    assert statuses.count(429) <= 2, statuses
    assert statuses.count(200) == 12
    assert elapsed >= 2.0


def test_test_connection_is_read_only(hook: HubSpotHook, sandbox: Sandbox) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    [entry] = sandbox.journal("hubspot")
    assert (entry.method, entry.path, entry.query) == ("GET", ORDERS, {"limit": "1"})
