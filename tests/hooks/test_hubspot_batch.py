"""HubSpot batch calls: whole-batch 400s isolated, repeated records split, every input settled.

Against the HubSpot emulator (its ``batch_errors`` setting switches how a 207 names failed inputs)
and, where the emulator cannot give the answer a real account may give, against canned answers.
"""

from __future__ import annotations

import math

import pytest

from airflow_provider_crm.errors import CrmPermissionError, CrmRateLimitError
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.models.hubspot import (
    BatchIncompleteError,
    error_object_ids,
    error_trace_ids,
    split_requests,
    value_held,
)
from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp
from tests.conftest import use_connection
from tests.contracts.replay import Canned, ReplayServer
from tests.hooks.test_hubspot_hook import assert_sent_bodies_match_spec

UPDATE = "/crm/v3/objects/orders/batch/update"
READ = "/crm/v3/objects/orders/batch/read"


def hubspot_app(sandbox: Sandbox) -> HubSpotApp:
    app = sandbox.app("hubspot")
    assert isinstance(app, HubSpotApp)
    return app


@pytest.fixture
def hook(hubspot_conn: str) -> HubSpotHook:
    return HubSpotHook(hubspot_conn_id=hubspot_conn)


def seed(sandbox: Sandbox, n: int) -> list[str]:
    app = hubspot_app(sandbox)
    return [app.seed({"hs_order_name": f"o{i}", "hs_external_order_id": f"ext-{i}"}) for i in range(n)]


def props(sandbox: Sandbox, order_id: str) -> dict:
    return sandbox.state("hubspot").get(order_id)["properties"]


def sent(sandbox: Sandbox, path: str = UPDATE) -> list[tuple[int | None, list[str]]]:
    return [(e.status, [i["id"] for i in e.body["inputs"]]) for e in sandbox.writes("hubspot") if e.path == path]


# Whole-batch 400s.


@pytest.mark.parametrize("bad", [{37}, {0}, {99}, {10, 90}])
def test_bad_values_are_isolated_and_every_other_input_applied(
    hook: HubSpotHook, sandbox: Sandbox, bad: set[int]
) -> None:
    ids = seed(sandbox, 100)
    inputs = [{"id": order_id, "properties": {"hs_total_price": 5}} for order_id in ids]
    for position in bad:
        inputs[position]["properties"] = {"hs_total_price": "n/a"}
    result = hook.batch_update_orders(inputs)
    assert sorted(result.written) == [p for p in range(100) if p not in bad]
    assert [(e.index, e.category) for e in result.errors] == [(p, "VALIDATION_ERROR") for p in sorted(bad)]
    assert all("hs_total_price" in e.message for e in result.errors)
    assert [p for p, order_id in enumerate(ids) if props(sandbox, order_id).get("hs_total_price") == "5"] == [
        p for p in range(100) if p not in bad
    ]
    requests = sent(sandbox)
    applied = [order_id for status, batch in requests if status == 200 for order_id in batch]
    assert sorted(applied) == sorted(ids[p] for p in range(100) if p not in bad), "each good input applied once"
    # One bad input costs two requests per halving; each more one at most as many again.
    assert len(requests) == result.requests == 1 + result.isolation_requests
    assert result.isolation_requests <= 2 * len(bad) * math.ceil(math.log2(100))


def test_a_batch_of_only_bad_inputs_ends_with_each_refused_alone(hook: HubSpotHook, sandbox: Sandbox) -> None:
    ids = seed(sandbox, 4)
    result = hook.batch_update_orders([{"id": i, "properties": {"hs_is_gift": "maybe"}} for i in ids])
    assert [e.index for e in result.errors] == [0, 1, 2, 3] and not result.written
    assert [len(batch) for _, batch in sent(sandbox)] == [4, 2, 1, 1, 2, 1, 1]


# Repeated records.


def test_a_repeated_record_goes_in_a_later_request_so_the_last_value_wins(hook: HubSpotHook, sandbox: Sandbox) -> None:
    a, b, c = seed(sandbox, 3)
    inputs = [
        {"id": a, "properties": {"hs_order_name": "a1"}},
        {"id": b, "properties": {"hs_order_name": "b1"}},
        {"id": a, "properties": {"hs_order_name": "a2"}},
        {"id": c, "properties": {"hs_order_name": "c1"}},
        {"id": a, "properties": {"hs_order_name": "a3"}},
    ]
    result = hook.batch_update_orders(inputs)
    assert sent(sandbox) == [(200, [a, b]), (200, [a, c]), (200, [a])]
    assert sorted(result.written) == [0, 1, 2, 3, 4]
    assert (props(sandbox, a)["hs_order_name"], props(sandbox, b)["hs_order_name"]) == ("a3", "b1")


def test_upserts_split_on_the_unique_value(hook: HubSpotHook, sandbox: Sandbox) -> None:
    inputs = [
        {"id": "new-1", "id_property": "hs_external_order_id", "properties": {"hs_order_name": "first"}},
        {"id": "new-1", "id_property": "hs_external_order_id", "properties": {"hs_order_name": "second"}},
    ]
    result = hook.batch_upsert_orders(inputs)
    assert [batch for _, batch in sent(sandbox, "/crm/v3/objects/orders/batch/upsert")] == [["new-1"], ["new-1"]]
    assert [result.written[p].new for p in (0, 1)] == [True, False]
    assert sandbox.state("hubspot").find_by_property("hs_external_order_id", "new-1")["properties"][
        "hs_order_name"
    ] == ("second")


def test_split_requests_keeps_order_and_size() -> None:
    bodies = [{"id": str(i % 3)} for i in range(7)] + [{"id": "X", "idProperty": "p"}, {"id": "x", "idProperty": "p"}]
    assert split_requests(bodies, 100) == [[0, 1, 2], [3, 4, 5], [6, 7], [8]]
    assert split_requests([{"id": str(i)} for i in range(5)], 2) == [[0, 1], [2, 3], [4]]


# How a 207 names failed inputs.


@pytest.mark.parametrize(
    ("style", "read_back"),
    [
        ("grouped", False),
        ("trace_id", False),
        ("context_trace", False),
        ("nested_trace", False),
        ("bare", True),
        ("silent", True),
    ],
)
def test_every_207_form_settles_each_input_correctly(
    hook: HubSpotHook, sandbox: Sandbox, style: str, read_back: bool
) -> None:
    app = hubspot_app(sandbox)
    app.configure({"batch_errors": style})
    app.add_property("kustomer_kobject_id", "string", unique=True)
    holder, first, last, target = seed(sandbox, 4)
    hook.update_order(holder, {"kustomer_kobject_id": "k-1"})
    inputs = [
        {"id": first, "properties": {"hs_fulfillment_status": "shipped"}},
        {"id": "424242", "properties": {"hs_fulfillment_status": "shipped"}},
        {"id": target, "properties": {"kustomer_kobject_id": "k-1"}},
        {"id": last, "properties": {"hs_fulfillment_status": "packed"}},
    ]
    result = hook.batch_update_orders(inputs)
    assert sorted(result.written) == [0, 3]
    assert [e.index for e in result.errors] == [1, 2]
    expected = ["NOT_APPLIED", "NOT_APPLIED"] if style == "silent" else ["OBJECT_NOT_FOUND", "CONFLICT"]
    assert [e.category for e in result.errors] == expected
    assert (props(sandbox, first)["hs_fulfillment_status"], props(sandbox, last)["hs_fulfillment_status"]) == (
        "shipped",
        "packed",
    )
    assert "kustomer_kobject_id" not in props(sandbox, target)
    reads = sent(sandbox, READ)
    assert reads == ([(207, ["424242", target])] if read_back else [])
    assert result.read_back == ([1, 2] if read_back else [])
    assert assert_sent_bodies_match_spec(sandbox) == 2 + len(reads)


def test_trace_ids_and_ids_are_read_wherever_hubspot_puts_them() -> None:
    assert error_trace_ids({"id": "input-1"}) == ["input-1"]
    assert error_trace_ids({"context": {"objectWriteTraceId": "input-2"}}) == ["input-2"]
    assert error_trace_ids({"context": {"objectWriteTraceId": ["input-3", "input-4"]}}) == ["input-3", "input-4"]
    assert error_trace_ids({"errors": [{"message": "x", "context": {"objectWriteTraceId": ["input-5"]}}]}) == [
        "input-5"
    ]
    assert error_trace_ids({"category": "VALIDATION_ERROR", "message": "x"}) == []
    assert error_trace_ids({"id": None, "context": None, "errors": "no"}) == []
    assert error_object_ids({"category": "OBJECT_NOT_FOUND", "context": {"ids": ["1", "2"]}}) == ["1", "2"]
    assert error_object_ids({"category": "CONFLICT", "context": {"ids": ["1"]}}) == [], "a conflict names the holder"


@pytest.mark.parametrize(
    ("sent_value", "held", "same"),
    [
        ("17.50", "17.5", True),
        ("17", "17.0", True),
        ("17", "18", False),
        ("1772323200000", "2026-03-01T00:00:00Z", True),
        ("1772323200000", "2026-03-01", True),
        ("1772323200000", "2026-03-01T00:00:00.001Z", False),
        ("vip;rush", "rush;vip", True),
        ("vip;rush", "vip", False),
        ("true", "True", True),
        ("", None, True),
        ("", "", True),
        ("x", None, False),
        ("Order", "order", False),
        # Surrounding whitespace or digit separators do not make a number or an instant.
        ("12\n", "12\n", True),
        ("12\n", "12", False),
        ("1430438400000\n", "2015-05-01T00:00:00Z", False),
        ("1_000", "1000", False),
    ],
)
def test_value_held_compares_by_meaning(sent_value: str, held: str | None, same: bool) -> None:
    assert value_held(sent_value, held) is same


def replay_connection(monkeypatch: pytest.MonkeyPatch, server: ReplayServer) -> None:
    conn: dict[str, object] = {"conn_type": "hubspot", "host": server.url, "password": "pat-replay-token-0123"}
    use_connection(monkeypatch, "hubspot_default", conn)


def _batch(results: list[dict], errors: list[dict] | None = None) -> dict:
    body: dict = {"status": "COMPLETE", "results": results, "startedAt": "2026-01-01T00:00:00Z"}
    if errors is not None:
        body |= {"numErrors": len(errors), "errors": errors}
    body["completedAt"] = "2026-01-01T00:00:01Z"
    return body


def _order(order_id: str, **properties: str) -> dict:
    return {
        "id": order_id,
        "properties": {"hs_object_id": order_id, **properties},
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00.500Z",
        "archived": False,
    }


def test_an_error_naming_no_input_never_refuses_an_input_hubspot_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    # The answer lists no results and one error that names nothing: which input failed is
    # unknown, so the three inputs are read back and settled by what HubSpot holds.
    anonymous = {"status": "error", "category": "VALIDATION_ERROR", "message": "something was not valid"}
    held = _batch([_order("11", hs_order_name="one"), _order("12", hs_order_name="stale")])
    with ReplayServer(Canned(207, _batch([], [anonymous])), Canned(200, held)) as server:
        replay_connection(monkeypatch, server)
        result = HubSpotHook().batch_update_orders(
            [
                {"id": "11", "properties": {"hs_order_name": "one"}},
                {"id": "12", "properties": {"hs_order_name": "two"}},
                {"id": "13", "properties": {"hs_order_name": "three"}},
            ]
        )
    assert [(r.method, r.path) for r in server.received] == [("POST", UPDATE), ("POST", READ)]
    assert server.received[1].body == {
        "inputs": [{"id": "11"}, {"id": "12"}, {"id": "13"}],
        "properties": ["hs_order_name"],
        "propertiesWithHistory": [],
    }
    assert list(result.written) == [0] and result.written[0].id == "11"
    assert [(e.index, e.category) for e in result.errors] == [(1, "VALIDATION_ERROR"), (2, "VALIDATION_ERROR")]
    assert "read back" in result.errors[0].message
    assert result.read_back == [0, 1, 2]


def test_results_without_trace_ids_are_matched_by_id_and_unique_value(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = _batch([_order("21", hs_external_order_id="EXT-B"), _order("20")])
    with ReplayServer(Canned(200, answer)) as server:
        replay_connection(monkeypatch, server)
        result = HubSpotHook().batch_update_orders(
            [
                {"id": "20", "properties": {"hs_order_name": "a"}},
                {"id": "ext-b", "id_property": "hs_external_order_id", "properties": {"hs_order_name": "b"}},
            ]
        )
    assert {p: obj.id for p, obj in result.written.items()} == {0: "20", 1: "21"}
    assert len(server.received) == 1, "nothing left open, nothing read back"


# A request failing after others were settled.


def test_a_later_request_failing_keeps_what_earlier_ones_wrote(hook: HubSpotHook, sandbox: Sandbox) -> None:
    ids = seed(sandbox, 250)
    hubspot_app(sandbox).configure({"daily_limit": 2})
    with pytest.raises(BatchIncompleteError) as caught:
        hook.batch_update_orders([{"id": i, "properties": {"hs_fulfillment_status": "done"}} for i in ids])
    error = caught.value
    assert isinstance(error.cause, CrmRateLimitError) and error.cause.code == "DAILY"
    assert isinstance(error.__cause__, CrmRateLimitError)
    assert sorted(error.result.written) == list(range(200))
    assert (error.uncertain, error.unsent) == (list(range(200, 250)), [])
    assert "200 input(s) written" in str(error)
    done = [p for p, i in enumerate(ids) if props(sandbox, i).get("hs_fulfillment_status") == "done"]
    assert done == list(range(200))


def test_a_first_request_failing_raises_its_own_error(hook: HubSpotHook, sandbox: Sandbox) -> None:
    ids = seed(sandbox, 3)
    hubspot_app(sandbox).configure({"scopes": ["crm.objects.orders.read"]})
    with pytest.raises(CrmPermissionError):
        hook.batch_update_orders([{"id": i, "properties": {"hs_order_name": "x"}} for i in ids])


# Batch read.


def test_read_orders_by_id_and_by_unique_value(hook: HubSpotHook, sandbox: Sandbox) -> None:
    ids = seed(sandbox, 150)
    found = hook.read_orders([*ids, "999999"], properties=["hs_order_name"])
    assert list(found) == ids and found[ids[120]].properties["hs_order_name"] == "o120"
    assert [len(batch) for _, batch in sent(sandbox, READ)] == [100, 51]
    by_value = hook.read_orders(["ext-3", "ext-4", "ext-404"], id_property="hs_external_order_id")
    assert {key: obj.id for key, obj in by_value.items()} == {"ext-3": ids[3], "ext-4": ids[4]}
    assert sandbox.writes("hubspot")[-1].body["idProperty"] == "hs_external_order_id"
    assert assert_sent_bodies_match_spec(sandbox) == 3
