"""The Kustomer emulator against Kustomer's documented KObject bodies: Id references, rev locking, limits.

Values taken from Kustomer's OpenAPI (LarisLab/kustomer-client:openapi.json@1d997b7): a new KObject
is at ``rev`` 0 and its ``type`` is ``kobject.<klass>`` (every KObject example: ``"kobject.order"``,
``rev`` 0 until the update example's ``rev`` 3); a JSON:API error's ``status`` is a string.
"""

from __future__ import annotations

import pytest

from airflow_provider_crm.sandbox import Sandbox

from .client import KustomerClient

ORDER_ID = "5822a4a5aa5f92110005d69a"


def test_id_attributes_are_stored_and_rendered(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    created = kustomer.post("/v1/klasses/orders", json={"title": "o", "custom": {"primaryOrderId": ORDER_ID}})
    assert created.status_code == 201, created.text
    kobject_id = created.json()["data"]["id"]
    assert created.json()["data"]["attributes"]["custom"] == {"primaryOrderId": ORDER_ID}
    cleared = kustomer.put(f"/v1/klasses/orders/{kobject_id}", json={"custom": {"primaryOrderId": None}})
    assert cleared.status_code == 200
    held = crm_sandbox.state("kustomer").get("orders", kobject_id)
    assert held is not None and held["custom"] == {"primaryOrderId": None}


@pytest.mark.parametrize("value", ["", "   ", 5, ["a"], {"id": "a"}])
def test_bad_id_values_are_400_naming_the_attribute(
    crm_sandbox: Sandbox, kustomer: KustomerClient, value: object
) -> None:
    response = kustomer.post("/v1/klasses/orders", json={"title": "o", "custom": {"primaryOrderId": value}})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "bad_request" and "primaryOrderId" in error["message"] and "id string" in error["message"]
    assert error["meta"]["pointer"] == "/custom/primaryOrderId"
    assert crm_sandbox.state("kustomer").count() == 0


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00Z\n", "2026-01-01T00:00:00+01:00\n", " 2026-01-01T00:00:00Z"])
def test_date_attributes_must_be_the_whole_value(crm_sandbox: Sandbox, kustomer: KustomerClient, value: str) -> None:
    response = kustomer.post("/v1/klasses/orders", json={"title": "o", "custom": {"shippedAt": value}})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["meta"]["pointer"] == "/custom/shippedAt"
    assert crm_sandbox.state("kustomer").count() == 0


def test_stale_rev_is_409_and_changes_nothing(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    record = crm_sandbox.kustomer.seed("orders", {"title": "o", "custom": {"statusStr": "placed"}}, rev=5)
    path = f"/v1/klasses/orders/{record['id']}"

    stale = kustomer.put(path, json={"rev": 4, "custom": {"statusStr": "shipped"}})
    assert stale.status_code == 409
    [error] = stale.json()["errors"]
    assert (error["code"], error["source"]) == ("conflict", {"pointer": "/rev"})
    assert "rev 4 is stale" in error["detail"]
    held = crm_sandbox.state("kustomer").get("orders", record["id"])
    assert held is not None and (held["rev"], held["custom"]["statusStr"]) == (5, "placed")

    current = kustomer.put(path, json={"rev": 5, "custom": {"statusStr": "shipped"}})
    assert current.status_code == 200
    assert current.json()["data"]["attributes"]["rev"] == 6
    again = kustomer.put(path, json={"rev": 5, "custom": {"statusStr": "lost"}})
    assert again.status_code == 409, "the revision moved on: the same rev is stale now"
    held = crm_sandbox.state("kustomer").get("orders", record["id"])
    assert held is not None and (held["rev"], held["custom"]["statusStr"]) == (6, "shipped")


def test_a_new_object_is_at_rev_0_and_rev_0_locks_like_any_other(
    crm_sandbox: Sandbox, kustomer: KustomerClient
) -> None:
    created = kustomer.post("/v1/klasses/orders", json={"title": "o"})
    assert created.status_code == 201 and created.json()["data"]["attributes"]["rev"] == 0
    path = f"/v1/klasses/orders/{created.json()['data']['id']}"

    first = kustomer.put(path, json={"rev": 0, "title": "p"})
    assert first.status_code == 200 and first.json()["data"]["attributes"]["rev"] == 1
    stale = kustomer.put(path, json={"rev": 0, "title": "q"})
    assert stale.status_code == 409, "0 is a revision, not 'no revision'"
    held = crm_sandbox.state("kustomer").get("orders", created.json()["data"]["id"])
    assert held is not None and (held["rev"], held["title"]) == (1, "p")
    assert crm_sandbox.kustomer.seed("orders", {"title": "s"})["rev"] == 0, "a seeded object is new too"


def test_type_names_the_klass_in_every_answer(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    created = kustomer.post("/v1/customers/c1/klasses/ecomm-order", json={"title": "o", "externalId": "e-1"})
    assert created.status_code == 201
    kobject_id = created.json()["data"]["id"]
    answers = [
        created.json()["data"],
        kustomer.get(f"/v1/klasses/ecomm-order/{kobject_id}").json()["data"],
        kustomer.get("/v1/klasses/ecomm-order/externalId=e-1").json()["data"],
        kustomer.put(f"/v1/klasses/ecomm-order/{kobject_id}", json={"title": "p"}).json()["data"],
        *kustomer.get("/v1/klasses/ecomm-order").json()["data"],
        *kustomer.get("/v1/customers/c1/klasses/ecomm-order").json()["data"],
    ]
    assert [(data["type"], data["relationships"]["klass"]["data"]["id"]) for data in answers] == [
        ("kobject.ecomm-order", "ecomm-order")
    ] * 6


def test_jsonapi_error_status_is_the_http_status_as_a_string(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    kustomer.post("/v1/klasses/orders", json={"title": "o", "externalId": "taken"})
    answers = [
        kustomer.get("/v1/klasses/orders/000000000000000000000000"),
        kustomer.post("/v1/klasses/orders", json={"title": "o", "externalId": "taken"}),
        kustomer.request("GET", "/v1/auth/tokens/current", headers={"Authorization": "Bearer wrong"}),
    ]
    crm_sandbox.kustomer.roles = ("org.permission.kobject.read",)
    answers.append(kustomer.post("/v1/klasses/orders", json={"title": "x"}))
    assert [(r.status_code, [e["status"] for e in r.json()["errors"]]) for r in answers] == [
        (404, ["404"]),
        (409, ["409"]),
        (401, ["401"]),
        (403, ["403"]),
    ]
    assert crm_sandbox.state("kustomer").count() == 1


def test_update_without_rev_is_not_locked(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    record = crm_sandbox.kustomer.seed("orders", {"title": "o"}, rev=9)
    response = kustomer.put(f"/v1/klasses/orders/{record['id']}", json={"title": "p"})
    assert response.status_code == 200 and response.json()["data"]["attributes"]["rev"] == 10


def test_create_takes_company_icon_images_created_at(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    body = {
        "title": "o",
        "company": "5d811e40de762100130174a8",
        "icon": "truck-delivery",
        "images": ["https://cdn.example.com/a.jpg"],
        "createdAt": "2016-11-12T05:39:36.976Z",
        "importedAt": "2016-11-12T05:39:36.976Z",
    }
    response = kustomer.post("/v1/klasses/orders", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["relationships"]["company"]["data"] == {"type": "company", "id": "5d811e40de762100130174a8"}
    attributes = data["attributes"]
    assert (attributes["icon"], attributes["images"], attributes["createdAt"]) == (
        "truck-delivery",
        ["https://cdn.example.com/a.jpg"],
        "2016-11-12T05:39:36.976Z",
    )


def test_parent_is_an_update_field_only(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    refused = kustomer.post("/v1/klasses/orders", json={"title": "o", "parent": ORDER_ID})
    assert refused.status_code == 400 and "parent" in refused.json()["errors"][0]["message"]
    record = crm_sandbox.kustomer.seed("orders", {"title": "o"})
    accepted = kustomer.put(f"/v1/klasses/orders/{record['id']}", json={"parent": ORDER_ID})
    assert accepted.status_code == 200
    empty = kustomer.put(f"/v1/klasses/orders/{record['id']}", json={"parent": ""})
    assert empty.status_code == 400


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"title": "x" * 257}, "title"),
        ({"title": "o", "externalId": "x" * 257}, "externalId"),
        ({"title": "o", "description": "x" * 10241}, "description"),
        ({"title": "o", "icon": "x" * 65}, "icon"),
        ({"title": "o", "images": ["https://a.example/x"] * 2}, "images"),
        ({"title": "o", "images": [f"https://a.example/{i}" for i in range(21)]}, "images"),
        ({"title": "o", "images": ["not a url"]}, "images.0"),
        ({"title": "o", "tags": ["a", "a"]}, "tags"),
        ({"title": "o", "tags": ["x" * 65]}, "tags.0"),
        ({"title": "o", "custom": {f"a{i}Num": i for i in range(101)}}, "custom"),
    ],
)
def test_documented_limits_are_400_naming_the_field(
    crm_sandbox: Sandbox, kustomer: KustomerClient, body: dict, attribute: str
) -> None:
    response = kustomer.post("/v1/klasses/orders", json=body)
    assert response.status_code == 400
    assert attribute in [error["meta"]["attribute"] for error in response.json()["errors"]]
    assert crm_sandbox.state("kustomer").count() == 0
