"""The HubSpot orders emulator over real HTTP: routes, validation, batches, limits, OAuth, faults."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from airflow_provider_crm.sandbox import RateLimit, Sandbox, ServerError, fault_from_dict
from airflow_provider_crm.sandbox.faults import HttpStatus
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp
from airflow_provider_crm.sandbox.vendors.hubspot.properties import PROPERTIES

from .client import TIMEOUT, HubSpotClient

ORDERS = "/crm/v3/objects/orders"
BATCH_UPDATE = ORDERS + "/batch/update"
BATCH_UPSERT = ORDERS + "/batch/upsert"
BY_EXTERNAL_ID = {"idProperty": "hs_external_order_id"}

ORDER = {
    "hs_order_name": "Order 1001",
    "hs_external_order_id": "ext-1001",
    "hs_currency_code": "EUR",
    "hs_total_price": "19.50",
    "hs_order_date": "1430438400000",
    "hs_shipped_at": "1430497234567",
    "hs_is_gift": "false",
    "hs_tags": "vip;rush",
    "kustomer_kobject_id": "6630f0c1a2b3c4d5e6f70809",
}


class FakeClock:
    """A clock that moves only when the test moves it (set as the app's wall or monotonic clock)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(sandbox: Sandbox) -> HubSpotApp:
    return sandbox.emulator(HubSpotApp)


def token_form(app: HubSpotApp, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": app.refresh_token,
    }
    return {**form, **overrides}


def stored(app: HubSpotApp, order_id: str) -> dict[str, Any]:
    record = app.state.get(order_id)
    assert record is not None, f"order {order_id} is not stored"
    return record


def found(app: HubSpotApp, name: str, value: str) -> dict[str, Any]:
    record = app.state.find_by_property(name, value)
    assert record is not None, f"no order has {name} = {value!r}"
    return record


def assert_error(response: requests.Response, status: int, category: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["status"], body["category"]) == ("error", category)
    assert body["correlationId"] == response.headers["x-hubspot-correlation-id"]
    uuid.UUID(body["correlationId"])
    return body


# Reads and single writes.


def test_create_then_get_list_and_state(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    created = hubspot.post(ORDERS, json={"properties": ORDER, "associations": []})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert body["id"].isdigit() and body["archived"] is False
    assert body["properties"]["hs_object_id"] == body["id"]
    assert {key: body["properties"][key] for key in ORDER} == ORDER

    fetched = hubspot.get(f"{ORDERS}/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body

    chosen = hubspot.get(f"{ORDERS}/{body['id']}", params={"properties": "hs_order_name,hs_fulfillment_status"})
    assert chosen.json()["properties"] == {
        "hs_order_name": "Order 1001",
        "hs_fulfillment_status": None,
        "hs_object_id": body["id"],
        "hs_createdate": body["createdAt"],
        "hs_lastmodifieddate": body["updatedAt"],
    }
    by_external = hubspot.get(f"{ORDERS}/ext-1001", params=BY_EXTERNAL_ID)
    assert by_external.json()["id"] == body["id"]

    assert stored(app, body["id"])["properties"]["hs_tags"] == "vip;rush"
    assert found(app, "hs_external_order_id", "ext-1001")["id"] == body["id"]
    assert app.state.find_by_property("hs_external_order_id", "nope") is None
    assert [order["id"] for order in app.state.orders()] == [body["id"]]


def test_seeded_ids_increment_and_list_pages(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    ids = [app.seed({"hs_order_name": f"Order {n}"}) for n in range(3)]
    assert [int(order_id) for order_id in ids] == list(range(int(ids[0]), int(ids[0]) + 3))
    assert hubspot.get(ORDERS).json() == {"results": hubspot.get(ORDERS, params={"limit": 10}).json()["results"]}

    first = hubspot.get(ORDERS, params={"limit": 2}).json()
    assert [order["id"] for order in first["results"]] == ids[:2]
    after = first["paging"]["next"]["after"]
    assert first["paging"]["next"]["link"] == f"{ORDERS}?limit=2&after={after}"
    second = hubspot.get(ORDERS, params={"limit": 2, "after": after}).json()
    assert [order["id"] for order in second["results"]] == ids[2:]
    assert "paging" not in second
    for limit in ("0", "101", "ten", "2\n", " 2", "+2", "\u0662"):
        assert_error(hubspot.get(ORDERS, params={"limit": limit}), 400, "VALIDATION_ERROR")
    for cursor in ("x", f"{after}\n", "\u00b2"):
        assert_error(hubspot.get(ORDERS, params={"after": cursor}), 400, "VALIDATION_ERROR")
    with pytest.raises(ValueError, match="does not exist"):
        app.seed({"nope": "x"})
    with pytest.raises(ValueError, match="strings"):
        app.seed({"hs_total_price": 3})  # type: ignore[dict-item]


def test_patch_is_partial_and_empty_string_clears(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    order_id = app.seed(ORDER)
    before = stored(app, order_id)
    response = hubspot.patch(
        f"{ORDERS}/{order_id}", json={"properties": {"hs_fulfillment_status": "shipped", "hs_tags": ""}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["properties"]["hs_fulfillment_status"] == "shipped"
    assert body["properties"]["hs_tags"] == ""
    assert body["properties"]["hs_order_name"] == "Order 1001"
    after = stored(app, order_id)
    assert "hs_tags" not in after["properties"]
    assert after["properties"]["hs_total_price"] == "19.50"
    assert after["createdAt"] == before["createdAt"]
    assert after["updatedAt"] == body["updatedAt"] >= before["updatedAt"]
    assert hubspot.get(f"{ORDERS}/{order_id}", params={"properties": "hs_tags"}).json()["properties"]["hs_tags"] is None


def test_patch_by_id_property(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    order_id = app.seed(ORDER)
    response = hubspot.patch(f"{ORDERS}/ext-1001", params=BY_EXTERNAL_ID, json={"properties": {"hs_order_name": "X"}})
    assert response.status_code == 200
    assert response.json()["id"] == order_id
    assert stored(app, order_id)["properties"]["hs_order_name"] == "X"

    missing = hubspot.patch(f"{ORDERS}/ext-404", params=BY_EXTERNAL_ID, json={"properties": {}})
    assert assert_error(missing, 404, "OBJECT_NOT_FOUND")["context"] == {"ids": ["ext-404"]}
    # Without idProperty the external id is taken as an internal id.
    assert_error(hubspot.patch(f"{ORDERS}/ext-1001", json={"properties": {}}), 404, "OBJECT_NOT_FOUND")
    not_unique = hubspot.patch(f"{ORDERS}/X", params={"idProperty": "hs_order_name"}, json={"properties": {}})
    assert assert_error(not_unique, 400, "VALIDATION_ERROR")["context"] == {"propertyName": ["hs_order_name"]}
    assert_error(hubspot.get(f"{ORDERS}/999"), 404, "OBJECT_NOT_FOUND")


def test_unique_values_conflict(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    first = app.seed({"hs_external_order_id": "a"})
    second = app.seed({"hs_external_order_id": "b"})
    taken = hubspot.patch(f"{ORDERS}/{second}", json={"properties": {"hs_external_order_id": "a"}})
    assert assert_error(taken, 409, "CONFLICT")["context"]["ids"] == [first]
    assert_error(hubspot.post(ORDERS, json={"properties": {"hs_external_order_id": "a"}}), 409, "CONFLICT")
    assert hubspot.patch(f"{ORDERS}/{first}", json={"properties": {"hs_external_order_id": "a"}}).ok
    assert app.state.count() == 2


# Body and property validation.


@pytest.mark.parametrize(("value", "kind"), [(17, "number"), (True, "boolean"), (None, "null"), ([], "array")])
def test_property_values_must_be_strings(app: HubSpotApp, hubspot: HubSpotClient, value: Any, kind: str) -> None:
    order_id = app.seed(ORDER)
    response = hubspot.patch(
        f"{ORDERS}/{order_id}", json={"properties": {"hs_order_name": "ok", "hs_total_price": value}}
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert "hs_total_price" in body["message"] and kind in body["message"]
    assert body["context"] == {"propertyName": ["hs_total_price"]}
    assert stored(app, order_id)["properties"]["hs_order_name"] == "Order 1001"


@pytest.mark.parametrize(
    "body",
    [
        {"properties": {}, "archived": False},
        {},
        {"properties": "hs_order_name=x"},
        ["properties"],
    ],
)
def test_body_shape_is_checked(app: HubSpotApp, hubspot: HubSpotClient, body: Any) -> None:
    order_id = app.seed(ORDER)
    assert_error(hubspot.patch(f"{ORDERS}/{order_id}", json=body), 400, "VALIDATION_ERROR")


def test_invalid_json_is_400(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    response = hubspot.post(ORDERS, data=b"{not json", headers={"Content-Type": "application/json"})
    assert "Invalid input JSON" in assert_error(response, 400, "VALIDATION_ERROR")["message"]


def test_unknown_and_read_only_properties(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    order_id = app.seed(ORDER)
    unknown = hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": {"hs_order_name": "x", "colour": "red"}})
    body = assert_error(unknown, 400, "VALIDATION_ERROR")
    assert body["errors"] == [
        {
            "message": 'Property "colour" does not exist',
            "code": "PROPERTY_DOESNT_EXIST",
            "context": {"propertyName": ["colour"]},
        }
    ]
    assert body["context"] == {"propertyName": ["colour"]}
    assert body["message"].startswith("Property values were not valid: [")
    for name in ("hs_object_id", "hs_createdate", "hs_lastmodifieddate"):
        response = hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": {name: "1"}})
        assert assert_error(response, 400, "VALIDATION_ERROR")["errors"][0]["code"] == "READ_ONLY_VALUE"
    assert stored(app, order_id)["properties"]["hs_order_name"] == "Order 1001"


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("hs_currency_code", "JPY", "INVALID_OPTION"),
        ("hs_currency_code", "usd", "INVALID_OPTION"),
        ("hs_total_price", "12,50", "INVALID_DECIMAL"),
        ("hs_total_price", "NaN", "INVALID_DECIMAL"),
        # Only digits, one leading "-" and one "." (HubSpot changelog "A change for number properties in CRM APIs").
        ("hs_total_price", "-1.5e3", "INVALID_DECIMAL"),
        ("hs_total_price", "+12", "INVALID_DECIMAL"),
        ("hs_total_price", " 12", "INVALID_DECIMAL"),
        ("hs_total_price", "1.2.3", "INVALID_DECIMAL"),
        ("hs_total_price", "\u0661\u0662", "INVALID_DECIMAL"),
        ("hs_order_date", "1430438400001", "INVALID_DATE"),
        ("hs_order_date", "2015-05-01", "INVALID_DATE"),
        ("hs_shipped_at", "yesterday", "INVALID_DATETIME"),
        ("hs_is_gift", "yes", "INVALID_OPTION"),
        ("hs_is_gift", "True", "INVALID_OPTION"),
        ("hs_tags", "vip;platinum", "INVALID_OPTION"),
    ],
)
def test_typed_values_are_checked(app: HubSpotApp, hubspot: HubSpotClient, name: str, value: str, code: str) -> None:
    order_id = app.seed(ORDER)
    response = hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": {name: value}})
    error = assert_error(response, 400, "VALIDATION_ERROR")["errors"][0]
    assert (error["code"], error["context"]) == (code, {"propertyName": [name]})


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("hs_total_price", "1.5", "INVALID_DECIMAL"),
        ("hs_total_price", "12", "INVALID_DECIMAL"),
        ("hs_order_date", "1430438400000", "INVALID_DATE"),
        ("hs_shipped_at", "1430497234567", "INVALID_DATETIME"),
    ],
)
def test_number_and_date_values_with_a_trailing_newline_are_refused(
    app: HubSpotApp, hubspot: HubSpotClient, name: str, value: str, code: str
) -> None:
    # A "$"-anchored re.match accepts "12\n" ("$" also matches before a final newline).
    order_id = app.seed({})
    response = hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": {name: value + "\n"}})
    error = assert_error(response, 400, "VALIDATION_ERROR")["errors"][0]
    assert (error["code"], error["context"]) == (code, {"propertyName": [name]})
    assert name not in stored(app, order_id)["properties"]
    assert hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": {name: value}}).status_code == 200
    assert stored(app, order_id)["properties"][name] == value


def test_valid_typed_values_and_clearing_every_type(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    order_id = app.seed({})
    values = {
        "hs_currency_code": "GBP",
        "hs_total_price": "-1500.25",
        "hs_order_date": "0",
        "hs_shipped_at": "1430497234567",
        "hs_is_gift": "true",
        "hs_tags": "b2b;gift;kustomer",
    }
    assert hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": values}).status_code == 200
    cleared = {name: "" for name in values}
    assert hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": cleared}).status_code == 200
    assert set(stored(app, order_id)["properties"]) == {
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }


def test_catalogue_can_be_extended(sandbox: Sandbox, app: HubSpotApp, hubspot: HubSpotClient) -> None:
    order_id = app.seed({})
    patch = {"properties": {"warehouse": "north"}}
    assert_error(hubspot.patch(f"{ORDERS}/{order_id}", json=patch), 400, "VALIDATION_ERROR")
    app.add_property("warehouse", "enumeration", options=("north", "south"))
    assert hubspot.patch(f"{ORDERS}/{order_id}", json=patch).status_code == 200
    # Over the control endpoint too (JSON definitions), e.g. a second unique id.
    control = requests.post(
        f"{sandbox.url}/_sandbox/config/hubspot",
        json={"extra_properties": {**app.extra_properties, "erp_id": {"type": "string", "unique": True}}},
        timeout=TIMEOUT,
    )
    assert control.status_code == 200
    assert hubspot.patch(f"{ORDERS}/{order_id}", json={"properties": {"erp_id": "E-1"}}).ok
    assert hubspot.get(f"{ORDERS}/E-1", params={"idProperty": "erp_id"}).json()["id"] == order_id
    sandbox.reset("hubspot")
    assert app.catalogue() == PROPERTIES
    with pytest.raises(ValueError):
        app.add_property("broken", "colour")


# Batches.


def test_batch_update_all_ok(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    first, second = app.seed(ORDER), app.seed({"hs_external_order_id": "ext-2"})
    response = hubspot.post(
        BATCH_UPDATE,
        json={
            "inputs": [
                {"id": first, "properties": {"hs_fulfillment_status": "packed"}},
                {"id": "ext-2", "idProperty": "hs_external_order_id", "properties": {"hs_order_name": "Two"}},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and "errors" not in body and "numErrors" not in body
    assert body["startedAt"] <= body["completedAt"]
    assert [result["id"] for result in body["results"]] == [first, second]
    assert stored(app, second)["properties"]["hs_order_name"] == "Two"


def test_batch_update_partial_failure_is_207_with_missing_ids_grouped(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    good = app.seed(ORDER)
    conflicting = app.seed({"hs_order_name": "untouched"})
    response = hubspot.post(
        BATCH_UPDATE,
        json={
            "inputs": [
                {"id": good, "properties": {"hs_order_name": "changed"}, "objectWriteTraceId": "t-good"},
                {"id": "424242", "properties": {"hs_order_name": "x"}, "objectWriteTraceId": "t-missing"},
                {"id": "434343", "properties": {"hs_order_name": "y"}, "objectWriteTraceId": "t-missing-2"},
                {
                    "id": conflicting,
                    "properties": {"hs_order_name": "x", "hs_external_order_id": "ext-1001"},
                    "objectWriteTraceId": "t-conflict",
                },
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert (body["status"], body["numErrors"]) == ("COMPLETE", 2)
    assert [(result["id"], result["objectWriteTraceId"]) for result in body["results"]] == [(good, "t-good")]
    missing, conflict = body["errors"]
    assert missing == {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": missing["message"],
        "context": {"ids": ["424242", "434343"]},
        "errors": [],
        "links": {},
    }, "missing records share one error that names them, with no trace id"
    assert (conflict["category"], conflict["id"]) == ("CONFLICT", "t-conflict")
    assert conflict["context"] == {"propertyName": ["hs_external_order_id"], "ids": [good]}
    assert stored(app, good)["properties"]["hs_order_name"] == "changed"
    assert stored(app, conflicting)["properties"]["hs_order_name"] == "untouched"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("trace_id", [{"id": "t-missing", "context": {"ids": ["424242"]}}]),
        ("context_trace", [{"context": {"ids": ["424242"], "objectWriteTraceId": ["t-missing"]}}]),
        ("nested_trace", [{"context": {"ids": ["424242"]}, "trace": "t-missing"}]),
        ("bare", [{}]),
        ("silent", []),
    ],
)
def test_batch_error_styles(app: HubSpotApp, hubspot: HubSpotClient, style: str, expected: list[dict]) -> None:
    app.configure({"batch_errors": style})
    good = app.seed(ORDER)
    inputs = [
        {"id": good, "properties": {"hs_order_name": "changed"}, "objectWriteTraceId": "t-good"},
        {"id": "424242", "properties": {"hs_order_name": "x"}, "objectWriteTraceId": "t-missing"},
    ]
    response = hubspot.post(BATCH_UPDATE, json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert [result["id"] for result in body["results"]] == [good]
    assert body["numErrors"] == len(expected) and len(body["errors"]) == len(expected)
    for error, want in zip(body["errors"], expected, strict=True):
        assert error["category"] == "OBJECT_NOT_FOUND" and error["status"] == "error" and error["message"]
        assert error.get("id") == want.get("id")
        assert error.get("context") == want.get("context", error.get("context"))
        if style == "bare":
            assert set(error) == {"status", "category", "message"}, "only the fields HubSpot may not omit"
        if "trace" in want:
            assert error["errors"][0]["context"] == {"objectWriteTraceId": want["trace"]}
    assert stored(app, good)["properties"]["hs_order_name"] == "changed"
    with pytest.raises(ValueError, match="batch_errors"):
        app.configure({"batch_errors": "loud"})


def test_one_invalid_value_refuses_the_whole_batch(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    ids = [app.seed({"hs_order_name": f"o{i}"}) for i in range(3)]
    inputs = [{"id": order_id, "properties": {"hs_total_price": "12"}} for order_id in ids]
    inputs[1]["properties"] = {"hs_total_price": "n/a"}
    body = assert_error(hubspot.post(BATCH_UPDATE, json={"inputs": inputs}), 400, "VALIDATION_ERROR")
    assert body["message"].startswith("Property values were not valid: [")
    assert json.loads(body["message"].split(": ", 1)[1])[0]["name"] == "hs_total_price"
    assert body["context"] == {"propertyName": ["hs_total_price"]}
    assert all("hs_total_price" not in stored(app, order_id)["properties"] for order_id in ids), "nothing applied"
    upsert = [
        {"id": "ext-1", "idProperty": "hs_external_order_id", "properties": {"hs_order_name": "fine"}},
        {"id": "ext-2", "idProperty": "hs_external_order_id", "properties": {"shoe_size": "42"}},
    ]
    assert_error(hubspot.post(BATCH_UPSERT, json={"inputs": upsert}), 400, "VALIDATION_ERROR")
    assert app.state.count() == 3, "an upsert batch with an unknown property creates nothing"


def test_a_repeated_record_refuses_the_whole_batch(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    order_id = app.seed({"hs_order_name": "kept"})
    other = app.seed({"hs_order_name": "also kept"})
    inputs = [
        {"id": order_id, "properties": {"hs_order_name": "a"}},
        {"id": other, "properties": {"hs_order_name": "b"}},
        {"id": order_id, "properties": {"hs_order_name": "c"}},
    ]
    body = assert_error(hubspot.post(BATCH_UPDATE, json={"inputs": inputs}), 400, "VALIDATION_ERROR")
    assert order_id in body["message"]
    assert stored(app, order_id)["properties"]["hs_order_name"] == "kept"
    assert stored(app, other)["properties"]["hs_order_name"] == "also kept"


def test_batch_where_every_input_fails_is_still_207(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    response = hubspot.post(
        BATCH_UPDATE, json={"inputs": [{"id": "1", "properties": {}}, {"id": "2", "properties": {}}]}
    )
    assert response.status_code == 207
    body = response.json()
    assert (body["results"], body["numErrors"]) == ([], 1)
    assert [error["context"] for error in body["errors"]] == [{"ids": ["1", "2"]}]


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [{"id": str(n), "properties": {}} for n in range(101)]},
        {"inputs": [{"id": "1", "properties": {}}, {"id": "1", "properties": {"hs_order_name": "x"}}]},
        {"inputs": [{"id": "1", "properties": {"hs_total_price": 3}}]},
        {"inputs": [{"id": "1"}]},
        {"inputs": [{"properties": {}}]},
        {"inputs": [{"id": "1", "properties": {}, "archived": True}]},
        {"inputs": {"id": "1"}},
        {"inputs": [], "extra": 1},
    ],
)
def test_batch_body_errors_refuse_the_whole_batch(app: HubSpotApp, hubspot: HubSpotClient, body: Any) -> None:
    order_id = app.seed({"hs_order_name": "kept"})
    for entry in body["inputs"] if isinstance(body["inputs"], list) else []:
        if entry.get("id") == "1":
            entry["id"] = order_id
    assert_error(hubspot.post(BATCH_UPDATE, json=body), 400, "VALIDATION_ERROR")
    assert stored(app, order_id)["properties"]["hs_order_name"] == "kept"


def test_batch_of_exactly_100_is_accepted(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    ids = [app.seed({}) for _ in range(100)]
    inputs = [{"id": order_id, "properties": {"hs_fulfillment_status": "done"}} for order_id in ids]
    response = hubspot.post(BATCH_UPDATE, json={"inputs": inputs})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 100


def test_batch_upsert_creates_and_updates(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    existing = app.seed(ORDER)
    response = hubspot.post(
        BATCH_UPSERT,
        json={
            "inputs": [
                {
                    "id": "ext-1001",
                    "idProperty": "hs_external_order_id",
                    "properties": {"hs_order_name": "Re"},
                },
                {
                    "id": "ext-2002",
                    "idProperty": "hs_external_order_id",
                    "properties": {"hs_currency_code": "USD"},
                },
            ]
        },
    )
    assert response.status_code == 200
    updated, created = response.json()["results"]
    assert (updated["id"], updated["new"]) == (existing, False)
    assert created["new"] is True and created["id"] != existing
    assert created["properties"]["hs_external_order_id"] == "ext-2002"
    assert found(app, "hs_external_order_id", "ext-2002")["properties"]["hs_currency_code"] == "USD"
    assert stored(app, existing)["properties"]["hs_order_name"] == "Re"


def test_batch_upsert_bad_id_property_and_required_id_property(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    response = hubspot.post(
        BATCH_UPSERT,
        json={
            "inputs": [
                {"id": "ext-1", "idProperty": "hs_external_order_id", "properties": {}},
                {"id": "Order", "idProperty": "hs_order_name", "properties": {}},
            ]
        },
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["context"] == {"propertyName": ["hs_order_name"]}
    assert app.state.count() == 0
    no_id_property = hubspot.post(BATCH_UPSERT, json={"inputs": [{"id": "ext-9", "properties": {}}]})
    assert "idProperty" in assert_error(no_id_property, 400, "VALIDATION_ERROR")["message"]


def test_batch_upsert_conflict_is_per_input(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    app.seed({"hs_external_order_id": "ext-1", "kustomer_kobject_id": "k-1"})
    app.add_property("kustomer_kobject_id", "string", unique=True)
    response = hubspot.post(
        BATCH_UPSERT,
        json={
            "inputs": [
                {"id": "ext-2", "idProperty": "hs_external_order_id", "properties": {}, "objectWriteTraceId": "a"},
                {
                    "id": "ext-3",
                    "idProperty": "hs_external_order_id",
                    "properties": {"kustomer_kobject_id": "k-1"},
                    "objectWriteTraceId": "b",
                },
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [(result["new"], result["objectWriteTraceId"]) for result in body["results"]] == [(True, "a")]
    assert [(error["category"], error["id"]) for error in body["errors"]] == [("CONFLICT", "b")]
    assert app.state.find_by_property("hs_external_order_id", "ext-3") is None


BATCH_READ = ORDERS + "/batch/read"


def test_batch_read_by_id_and_by_unique_property(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    first = app.seed(ORDER)
    second = app.seed({"hs_external_order_id": "ext-2", "hs_order_name": "Two"})
    response = hubspot.post(
        BATCH_READ,
        json={"inputs": [{"id": first}, {"id": second}], "properties": ["hs_order_name"], "propertiesWithHistory": []},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and "errors" not in body
    assert [(r["id"], r["properties"]["hs_order_name"]) for r in body["results"]] == [
        (first, "Order 1001"),
        (second, "Two"),
    ]
    assert "hs_currency_code" not in body["results"][0]["properties"], "only the properties asked for"
    by_value = hubspot.post(
        BATCH_READ,
        json={
            "inputs": [{"id": "ext-2"}, {"id": "ext-404"}],
            "properties": [],
            "propertiesWithHistory": [],
            "idProperty": "hs_external_order_id",
        },
    )
    assert by_value.status_code == 207
    body = by_value.json()
    assert [(r["id"], r["properties"]["hs_external_order_id"]) for r in body["results"]] == [(second, "ext-2")]
    assert [(e["category"], e["context"]) for e in body["errors"]] == [("OBJECT_NOT_FOUND", {"ids": ["ext-404"]})]
    assert app.state.get(second)["updatedAt"] == stored(app, second)["updatedAt"]


def test_batch_read_refusals_and_scope(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    bad_property = hubspot.post(BATCH_READ, json={"inputs": [{"id": "x"}], "idProperty": "hs_order_name"})
    assert assert_error(bad_property, 400, "VALIDATION_ERROR")["context"] == {"propertyName": ["hs_order_name"]}
    assert_error(hubspot.post(BATCH_READ, json={"inputs": [{"id": 1}]}), 400, "VALIDATION_ERROR")
    assert_error(
        hubspot.post(BATCH_READ, json={"inputs": [{"id": str(n)} for n in range(101)]}), 400, "VALIDATION_ERROR"
    )
    app.configure({"scopes": ["crm.objects.orders.write"]})
    assert_error(hubspot.post(BATCH_READ, json={"inputs": [{"id": "1"}]}), 403, "MISSING_SCOPES")


# Authentication, scopes, routes.


def test_401_bodies_and_nothing_stored(sandbox: Sandbox, app: HubSpotApp) -> None:
    url = sandbox.base_url("hubspot") + ORDERS
    for headers in ({}, {"Authorization": "Bearer pat-na1-wrong"}, {"Authorization": app.token}):
        response = requests.post(url, json={"properties": {}}, headers=headers, timeout=TIMEOUT)
        body = assert_error(response, 401, "INVALID_AUTHENTICATION")
        assert body["message"].startswith("Authentication credentials not found.")
        assert "X-HubSpot-RateLimit-Max" not in response.headers
    assert app.state.count() == 0
    assert [entry.authorized for entry in sandbox.journal("hubspot")] == [False, False, False]


def test_missing_scopes_is_403(app: HubSpotApp, hubspot: HubSpotClient) -> None:
    app.configure({"scopes": ["crm.objects.orders.read"]})
    assert hubspot.get(ORDERS).status_code == 200
    body = assert_error(hubspot.post(ORDERS, json={"properties": {}}), 403, "MISSING_SCOPES")
    assert body["errors"][0]["context"] == {"requiredGranularScopes": ["crm.objects.orders.write"]}
    assert app.state.count() == 0


def test_unknown_route_is_404(hubspot: HubSpotClient) -> None:
    assert_error(hubspot.get("/crm/v3/objects/tickets"), 404, "OBJECT_NOT_FOUND")
    assert_error(hubspot.request("DELETE", f"{ORDERS}/1"), 404, "OBJECT_NOT_FOUND")


def test_every_answer_has_its_own_correlation_id(sandbox: Sandbox, hubspot: HubSpotClient) -> None:
    seen = {hubspot.get(ORDERS).headers["x-hubspot-correlation-id"] for _ in range(3)}
    seen.add(requests.get(sandbox.base_url("hubspot") + ORDERS, timeout=TIMEOUT).headers["x-hubspot-correlation-id"])
    assert len(seen) == 4
    assert seen == {entry.request_id for entry in sandbox.journal("hubspot")}


def test_oauth_refresh_flow(sandbox: Sandbox, app: HubSpotApp) -> None:
    token_url = sandbox.base_url("hubspot") + "/oauth/v1/token"
    issued = requests.post(token_url, data=token_form(app), timeout=TIMEOUT)
    assert issued.status_code == 200
    token = issued.json()
    assert token == {
        "token_type": "bearer",
        "refresh_token": "sandbox-hubspot-refresh-0123456789",
        "access_token": token["access_token"],
        "expires_in": 1800,
    }
    assert "X-HubSpot-RateLimit-Max" not in issued.headers
    client = HubSpotClient(sandbox, token["access_token"])
    response = client.post(ORDERS, json={"properties": {"hs_order_name": "via OAuth"}})
    assert response.status_code == 201
    # OAuth apps have their own burst budget and no daily limit.
    assert response.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert "X-HubSpot-RateLimit-Daily" not in response.headers
    requests.post(token_url, data=token_form(app), timeout=TIMEOUT)
    assert app.state.tokens_issued == 2
    assert sandbox.state("hubspot").snapshot()["tokens_issued"] == 2


@pytest.mark.parametrize(
    ("override", "status"),
    [
        ({"client_id": "someone-else"}, "BAD_CLIENT_ID"),
        ({"client_secret": "wrong"}, "BAD_CLIENT_ID"),
        ({"refresh_token": "expired-or-revoked"}, "BAD_REFRESH_TOKEN"),
        ({"grant_type": "authorization_code"}, "BAD_GRANT_TYPE"),
    ],
)
def test_oauth_refresh_errors(sandbox: Sandbox, app: HubSpotApp, override: dict[str, str], status: str) -> None:
    response = requests.post(
        sandbox.base_url("hubspot") + "/oauth/v1/token", data=token_form(app, **override), timeout=TIMEOUT
    )
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == status and body["message"]
    assert app.state.tokens_issued == 0


def test_expired_oauth_token_is_401(sandbox: Sandbox, app: HubSpotApp, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(1_700_000_000.0)
    monkeypatch.setattr(app, "wall_clock", clock)
    app.configure({"access_token_ttl_seconds": 90.5})
    issued = requests.post(sandbox.base_url("hubspot") + "/oauth/v1/token", data=token_form(app), timeout=TIMEOUT)
    assert issued.json()["expires_in"] == 90.5
    client = HubSpotClient(sandbox, issued.json()["access_token"])
    clock.now += 90
    assert client.get(ORDERS).status_code == 200
    clock.now += 0.5 + 125
    body = assert_error(client.get(ORDERS), 401, "EXPIRED_AUTHENTICATION")
    assert body["message"] == "The OAuth token used to make this call expired 2 minute(s) ago."
    assert body["context"] == {"expire time": ["2023-11-14T22:14:50.500Z"]}


# Rate limits.


def test_rate_limit_headers_count_down(hubspot: HubSpotClient) -> None:
    first, second = hubspot.get(ORDERS).headers, hubspot.get(ORDERS).headers
    assert first["X-HubSpot-RateLimit-Max"] == "190"
    assert first["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(first["X-HubSpot-RateLimit-Remaining"]) - int(second["X-HubSpot-RateLimit-Remaining"]) == 1
    assert int(first["X-HubSpot-RateLimit-Daily-Remaining"]) - int(second["X-HubSpot-RateLimit-Daily-Remaining"]) == 1
    assert int(first["X-HubSpot-RateLimit-Daily"]) > int(first["X-HubSpot-RateLimit-Daily-Remaining"])


def test_injected_ten_secondly_rate_limit(sandbox: Sandbox, app: HubSpotApp, hubspot: HubSpotClient) -> None:
    sandbox.inject("hubspot", RateLimit(retry_after=2))
    response = hubspot.post(ORDERS, json={"properties": {}})
    assert response.status_code == 429
    body = response.json()
    uuid.UUID(body.pop("requestId"))
    assert body == {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": response.headers["x-hubspot-correlation-id"],
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "2000"
    assert response.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert "Retry-After" not in response.headers
    assert app.state.count() == 0
    assert sandbox.journal("hubspot")[-1].fault == "rate_limit"

    sandbox.inject("hubspot", RateLimit(retry_after=0.5, interval_ms=10_000, force_retry_after_header=True))
    forced = hubspot.get(ORDERS)
    assert forced.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert forced.headers["Retry-After"] == "0.5"


def test_injected_daily_rate_limit(sandbox: Sandbox, hubspot: HubSpotClient) -> None:
    sandbox.inject("hubspot", fault_from_dict({"kind": "rate_limit", "policy": "DAILY", "retry_after": 60}))
    response = hubspot.get(ORDERS)
    assert response.status_code == 429
    body = response.json()
    assert (body["message"], body["policyName"], body["errorType"]) == (
        "You have reached your daily limit.",
        "DAILY",
        "RATE_LIMIT",
    )
    assert response.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert response.headers["X-HubSpot-RateLimit-Daily"] == "650000"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] != "0"
    assert "Retry-After" not in response.headers
    assert hubspot.get(ORDERS).status_code == 200


def test_emulated_burst_limit(app: HubSpotApp, hubspot: HubSpotClient, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(500.0)
    monkeypatch.setattr(app, "monotonic_clock", clock)
    app.configure({"burst_limit": 2, "interval_ms": 250})
    remaining = [hubspot.get(ORDERS).headers["X-HubSpot-RateLimit-Remaining"] for _ in range(2)]
    assert remaining == ["1", "0"]
    refused = hubspot.get(ORDERS)
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "250"
    assert "Retry-After" not in refused.headers
    clock.now = 500.125
    assert hubspot.get(ORDERS).status_code == 429, "still within the rolling window"
    clock.now = 500.25
    again = hubspot.get(ORDERS)
    assert again.status_code == 200
    assert again.headers["X-HubSpot-RateLimit-Remaining"] == "1"


def test_emulated_daily_limit_spares_oauth(sandbox: Sandbox, app: HubSpotApp, hubspot: HubSpotClient) -> None:
    app.configure({"daily_limit": 2})
    assert [hubspot.get(ORDERS).headers["X-HubSpot-RateLimit-Daily-Remaining"] for _ in range(2)] == [
        "1",
        "0",
    ]
    refused = hubspot.post(ORDERS, json={"properties": {}})
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "DAILY"
    assert app.state.count() == 0
    token = requests.post(sandbox.base_url("hubspot") + "/oauth/v1/token", data=token_form(app), timeout=TIMEOUT)
    assert HubSpotClient(sandbox, token.json()["access_token"]).get(ORDERS).status_code == 200
    sandbox.reset("hubspot")
    assert app.daily_limit is None
    assert hubspot.get(ORDERS).status_code == 200


def test_limit_settings_are_checked(app: HubSpotApp) -> None:
    for bad in ({"burst_limit": 0}, {"interval_ms": "10s"}, {"daily_limit": True}, {"client_id": ""}):
        with pytest.raises(ValueError):
            app.configure(bad)
    assert app.configure({"burst_limit": None})["burst_limit"] is None


# Server errors and other statuses.


def test_server_errors(sandbox: Sandbox, app: HubSpotApp, hubspot: HubSpotClient) -> None:
    sandbox.inject("hubspot", ServerError(500))
    body = assert_error(hubspot.post(ORDERS, json={"properties": {}}), 500, "INTERNAL_ERROR")
    assert body["message"]
    sandbox.inject("hubspot", ServerError(503))
    assert_error(hubspot.get(ORDERS), 503, "INTERNAL_ERROR")
    for status in (502, 504):
        sandbox.inject("hubspot", ServerError(status))
        page = hubspot.get(ORDERS)
        assert page.status_code == status
        assert page.headers["Content-Type"].startswith("text/html")
        assert f"Error code {status}" in page.text
    sandbox.inject("hubspot", ServerError(502, body="<html>upstream</html>"))
    raw = hubspot.get(ORDERS)
    assert (raw.status_code, raw.text) == (502, "<html>upstream</html>")
    assert raw.headers["x-hubspot-correlation-id"]
    assert app.state.count() == 0


def test_http_status_fault_for_423_and_524(sandbox: Sandbox, hubspot: HubSpotClient) -> None:
    sandbox.inject("hubspot", HttpStatus(423, headers={"X-Sandbox-Reason": "locked"}))
    locked = hubspot.patch(f"{ORDERS}/1", json={"properties": {}})
    assert assert_error(locked, 423, "LOCKED")
    assert locked.headers["X-Sandbox-Reason"] == "locked"
    assert sandbox.journal("hubspot")[-1].fault == "http_status"

    sandbox.inject("hubspot", fault_from_dict({"kind": "http_status", "status": 524}))
    timeout = hubspot.post(BATCH_UPDATE, json={"inputs": []})
    assert timeout.status_code == 524
    assert "A timeout occurred" in timeout.text and timeout.headers["CF-RAY"]

    body = '{"status":"error","message":"Migration in progress"}'
    sandbox.inject("hubspot", HttpStatus(477, body=body, headers={"Retry-After": "1"}))
    migrating = hubspot.get(ORDERS)
    assert (migrating.status_code, migrating.json()["message"]) == (477, "Migration in progress")
    assert migrating.headers["Content-Type"].startswith("application/json")
    assert migrating.headers["Retry-After"] == "1"
    assert hubspot.get(ORDERS).status_code == 200


def test_http_status_fault_validation() -> None:
    assert HttpStatus(423).to_dict() == {
        "kind": "http_status",
        "count": 1,
        "method": None,
        "path_pattern": None,
        "status": 423,
        "body": None,
        "headers": None,
    }
    for bad in (
        {"kind": "http_status"},
        {"kind": "http_status", "status": 200},
        {"kind": "http_status", "status": 423, "headers": {"A": 1}},
        {"kind": "rate_limit", "interval_ms": 0},
        {"kind": "rate_limit", "policy": ""},
    ):
        with pytest.raises(ValueError):
            fault_from_dict(bad)


def test_kustomer_rate_limit_is_unchanged(sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", RateLimit(retry_after=2, policy="DAILY", interval_ms=5))
    response = requests.get(
        sandbox.base_url("kustomer") + "/v1/auth/tokens/current",
        headers={"Authorization": f"Bearer {sandbox.token('kustomer')}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.headers["x-ratelimit-reset"] == "2"
    assert response.json()["errors"][0]["code"] == "too_many_requests"


def test_reset_forgets_orders_tokens_and_settings(sandbox: Sandbox, app: HubSpotApp, hubspot: HubSpotClient) -> None:
    app.seed(ORDER)
    app.configure({"scopes": [], "burst_limit": 5})
    requests.post(sandbox.base_url("hubspot") + "/oauth/v1/token", data=token_form(app), timeout=TIMEOUT)
    sandbox.reset("hubspot")
    assert (app.state.count(), app.state.tokens_issued) == (0, 0)
    assert app.config()["scopes"] == ("crm.objects.orders.read", "crm.objects.orders.write")
    assert app.seed({}) == "1000001"
    state = requests.get(f"{sandbox.url}/_sandbox/state/hubspot", timeout=TIMEOUT).json()
    assert [order["id"] for order in state["orders"]] == ["1000001"]
