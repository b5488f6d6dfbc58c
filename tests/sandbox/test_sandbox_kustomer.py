"""The Kustomer emulator over real HTTP: auth, KObject round trips, validation, conflicts."""

from __future__ import annotations

import http.client
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from airflow_provider_crm.sandbox import Latency, Sandbox
from airflow_provider_crm.sandbox.vendors.kustomer.validation import is_datetime_with_offset, is_http_url

from .client import TIMEOUT, KustomerClient

ORDER = {
    "title": "Order 1001",
    "externalId": "order-1001",
    "custom": {
        "orderNumberNum": 1001,
        "totalPriceNum": 19.5,
        "orderStatusStr": "open",
        "orderUpdatedAt": "2026-01-02T03:04:05.678Z",
        "refundedBool": False,
        "trackingUrl": "https://example.com/track/1001",
        "notesTxt": None,
    },
    "tags": ["vip"],
}


def test_missing_or_wrong_token_is_401_in_kustomer_shape(crm_sandbox: Sandbox) -> None:
    url = crm_sandbox.base_url("kustomer") + "/v1/klasses/orders"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": crm_sandbox.token("kustomer")}):
        response = requests.post(url, json={"title": "x"}, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401
        error = response.json()["errors"][0]
        assert (error["status"], error["code"], error["title"]) == ("401", "unauthorized", "Unauthorized")
    assert crm_sandbox.state("kustomer").count() == 0
    assert [entry.authorized for entry in crm_sandbox.journal("kustomer")] == [False, False, False]


def test_token_endpoint_describes_the_key(kustomer: KustomerClient) -> None:
    response = kustomer.get("/v1/auth/tokens/current")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["type"] == "token"
    assert "org.permission.kobject.create" in data["attributes"]["roles"]


def test_create_get_update_lookup_round_trip(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    created = kustomer.post("/v1/klasses/orders", json=ORDER)
    assert created.status_code == 201
    data = created.json()["data"]
    kobject_id = data["id"]
    assert re.fullmatch(r"[0-9a-f]{24}", kobject_id)
    # Kustomer's OpenAPI examples: "type": "kobject.<klass>" and a new object at rev 0.
    assert data["type"] == "kobject.orders"
    assert data["attributes"]["rev"] == 0
    assert data["attributes"]["createdAt"] == data["attributes"]["updatedAt"]
    assert data["attributes"]["custom"]["orderNumberNum"] == 1001
    assert data["relationships"]["klass"] == {
        "link": {"self": "/v1/klasses/orders"},
        "data": {"type": "klass", "id": "orders"},
    }
    assert data["relationships"]["org"]["data"]["type"] == "org"
    assert data["links"]["self"] == f"/v1/klasses/orders/{kobject_id}"

    fetched = kustomer.get(f"/v1/klasses/orders/{kobject_id}")
    assert fetched.status_code == 200
    assert fetched.json()["data"]["attributes"] == data["attributes"]

    updated = kustomer.put(
        f"/v1/klasses/orders/{kobject_id}",
        json={"custom": {"orderStatusStr": "shipped"}, "description": "sent", "rev": 0},
    )
    assert updated.status_code == 200
    attributes = updated.json()["data"]["attributes"]
    assert attributes["rev"] == 1
    assert updated.json()["data"]["type"] == "kobject.orders"
    assert attributes["description"] == "sent"
    assert attributes["title"] == "Order 1001"
    assert attributes["custom"]["orderStatusStr"] == "shipped"
    assert attributes["custom"]["orderNumberNum"] == 1001

    by_external_id = kustomer.get("/v1/klasses/orders/externalId=order-1001")
    assert by_external_id.status_code == 200
    assert by_external_id.json()["data"]["id"] == kobject_id
    assert by_external_id.json()["data"]["attributes"]["rev"] == 1

    stored = crm_sandbox.kustomer.state.find_by_external_id("orders", "order-1001")
    assert stored is not None and stored["id"] == kobject_id
    assert crm_sandbox.state("kustomer").kobjects("orders") == [stored]


def test_unknown_ids_and_external_ids_are_404(kustomer: KustomerClient) -> None:
    for path in ("/v1/klasses/orders/000000000000000000000000", "/v1/klasses/orders/externalId=nope"):
        response = kustomer.get(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "not_found"
    response = kustomer.put("/v1/klasses/orders/000000000000000000000000", json={"title": "x"})
    assert response.status_code == 404


def test_create_linked_to_customer(kustomer: KustomerClient) -> None:
    response = kustomer.post("/v1/customers/cust-1/klasses/orders", json={"title": "Linked"})
    assert response.status_code == 201
    assert response.json()["data"]["relationships"]["customer"]["data"] == {
        "type": "customer",
        "id": "cust-1",
    }
    listed = kustomer.get("/v1/customers/cust-1/klasses/orders").json()
    assert [item["attributes"]["title"] for item in listed["data"]] == ["Linked"]


def test_list_paginates_and_delete_removes(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    created = [kustomer.post("/v1/klasses/orders", json={"title": f"o{i}"}) for i in range(3)]
    ids = [response.json()["data"]["id"] for response in created]
    page = kustomer.get("/v1/klasses/orders", params={"page": 2, "pageSize": 2}).json()
    assert [item["id"] for item in page["data"]] == ids[2:]
    assert page["meta"] == {"page": 2, "pageSize": 2, "total": 3, "totalPages": 2}
    assert page["links"]["next"] is None and page["links"]["prev"].endswith("page=1&pageSize=2")

    response = kustomer.delete(f"/v1/klasses/orders/{ids[0]}")
    assert response.status_code == 204 and response.content == b""
    assert crm_sandbox.kustomer.state.count("orders") == 2


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"title": "x", "custom": {"totalNum": "12"}}, "totalNum"),
        ({"title": "x", "custom": {"paidBool": 1}}, "paidBool"),
        ({"title": "x", "custom": {"countNum": True}}, "countNum"),
        ({"title": "x", "custom": {"shippedAt": "2026-01-02T03:04:05"}}, "shippedAt"),
        ({"title": "x", "custom": {"shippedAt": "2026-01-02"}}, "shippedAt"),
        ({"title": "x", "custom": {"noteStr": "a" * 1025}}, "noteStr"),
        ({"title": "x", "custom": {"siteUrl": "ftp://example.com"}}, "siteUrl"),
        ({"title": "x", "custom": {"colour": "red"}}, "colour"),
        ({"title": "x", "tags": ["ok", 3]}, "tags"),
        ({"title": "x", "images": "https://example.com/a.png"}, "images"),
        ({"title": "x", "color": "red"}, "color"),
        ({"title": ""}, "title"),
        ({"description": "no title"}, "title"),
    ],
)
def test_invalid_create_is_400_naming_the_attribute(
    crm_sandbox: Sandbox, kustomer: KustomerClient, body: dict[str, object], attribute: str
) -> None:
    response = kustomer.post("/v1/klasses/orders", json=body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["code"] == "bad_request"
    assert any(attribute in error["message"] for error in errors)
    assert crm_sandbox.kustomer.state.count() == 0
    assert crm_sandbox.journal("kustomer")[-1].stored is False


def test_invalid_json_and_non_object_bodies_are_400(kustomer: KustomerClient) -> None:
    for data in (b"{not json", b"[1, 2]", b"", b'{"title": NaN}'):
        response = kustomer.post("/v1/klasses/orders", data=data, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "bad_request"


def test_update_rejects_bad_values_and_create_only_fields(kustomer: KustomerClient) -> None:
    kobject_id = kustomer.post("/v1/klasses/orders", json={"title": "x"}).json()["data"]["id"]
    for body, attribute in (({"custom": {"totalNum": "1"}}, "totalNum"), ({"customer": "c1"}, "customer")):
        response = kustomer.put(f"/v1/klasses/orders/{kobject_id}", json=body)
        assert response.status_code == 400
        assert attribute in response.json()["errors"][0]["message"]
    assert kustomer.get(f"/v1/klasses/orders/{kobject_id}").json()["data"]["attributes"]["rev"] == 0


def test_duplicate_external_id_is_409_in_jsonapi_shape(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    assert kustomer.post("/v1/klasses/orders", json=ORDER).status_code == 201
    response = kustomer.post("/v1/klasses/orders", json=ORDER)
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert (error["status"], error["code"], error["title"]) == ("409", "conflict", "Conflict")
    assert error["source"] == {"pointer": "/externalId"}
    assert "order-1001" in error["detail"]
    assert crm_sandbox.kustomer.state.count("orders") == 1
    # The same externalId in another klass is fine.
    assert kustomer.post("/v1/klasses/invoices", json=ORDER).status_code == 201


def test_update_to_a_taken_external_id_is_409(kustomer: KustomerClient) -> None:
    kustomer.post("/v1/klasses/orders", json={"title": "a", "externalId": "a"})
    second = kustomer.post("/v1/klasses/orders", json={"title": "b", "externalId": "b"}).json()["data"]["id"]
    assert kustomer.put(f"/v1/klasses/orders/{second}", json={"externalId": "a"}).status_code == 409
    assert kustomer.put(f"/v1/klasses/orders/{second}", json={"externalId": "b"}).status_code == 200
    assert kustomer.put(f"/v1/klasses/orders/{second}", json={"externalId": "c"}).status_code == 200
    assert kustomer.get("/v1/klasses/orders/externalId=c").json()["data"]["id"] == second
    assert kustomer.get("/v1/klasses/orders/externalId=b").status_code == 404


def test_encoded_slash_stays_one_segment(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    created = kustomer.post("/v1/klasses/orders", json={"title": "x", "externalId": "a/b"})
    kobject_id = created.json()["data"]["id"]
    assert kustomer.get("/v1/klasses/orders/a%2Fb").status_code == 404
    assert kustomer.put("/v1/klasses/orders/a%2Fb", json={"title": "y"}).status_code == 404
    # "orders%2F<id>" is one klass name: GET lists that (empty) klass, PUT has no route.
    assert kustomer.get(f"/v1/klasses/orders%2F{kobject_id}").json()["data"] == []
    assert kustomer.put(f"/v1/klasses/orders%2F{kobject_id}", json={"title": "y"}).status_code == 404
    lookup = kustomer.get("/v1/klasses/orders/externalId=a%2Fb")
    assert lookup.status_code == 200 and lookup.json()["data"]["id"] == kobject_id
    entry = crm_sandbox.journal("kustomer")[1]
    assert entry.path == "/v1/klasses/orders/a%2Fb"
    assert entry.segments == ("v1", "klasses", "orders", "a/b")


def test_dot_segments_are_not_normalised(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    kobject_id = kustomer.post("/v1/klasses/orders", json={"title": "x"}).json()["data"]["id"]
    # http.client sends the target verbatim; requests/urllib3 may normalise dot segments.
    connection = http.client.HTTPConnection("127.0.0.1", crm_sandbox.port, timeout=TIMEOUT)
    headers = {"Authorization": f"Bearer {crm_sandbox.token('kustomer')}"}
    try:
        for raw in ("/v1/klasses/orders/..", "/v1/klasses/orders/.", f"/v1/klasses/x/../orders/{kobject_id}"):
            connection.request("GET", "/kustomer" + raw, headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 404, raw
    finally:
        connection.close()
    assert crm_sandbox.journal()[-1].path == f"/v1/klasses/x/../orders/{kobject_id}"


def test_unknown_route_is_404_with_every_response_header(kustomer: KustomerClient) -> None:
    response = kustomer.get("/v1/nothing/here")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert kustomer.request("PATCH", "/v1/klasses/orders/x", json={}).status_code == 404
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-request-id"):
        assert response.headers[name]


def test_missing_role_is_403(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.kustomer.roles = ("org.permission.kobject.read",)
    response = kustomer.post("/v1/klasses/orders", json={"title": "x"})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "forbidden"
    crm_sandbox.kustomer.roles = ("org.permission.kobject.kobject_orders.create",)
    assert kustomer.post("/v1/klasses/orders", json={"title": "x"}).status_code == 201


def test_per_customer_create_limit_spares_imported_objects(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.kustomer.create_limit_per_minute = 2
    body = {"title": "x", "customer": "c1"}
    assert [kustomer.post("/v1/klasses/orders", json=body).status_code for _ in range(2)] == [201, 201]
    limited = kustomer.post("/v1/klasses/orders", json=body)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert 0 < float(limited.headers["x-ratelimit-reset"]) <= 60
    assert limited.json()["errors"][0]["code"] == "too_many_requests"
    imported = {**body, "importedAt": "2026-01-01T00:00:00Z"}
    assert kustomer.post("/v1/klasses/orders", json=imported).status_code == 201
    assert kustomer.post("/v1/klasses/orders", json={"title": "x", "customer": "c2"}).status_code == 201
    assert crm_sandbox.kustomer.state.count("orders") == 4


def test_rate_limit_headers_count_down(kustomer: KustomerClient) -> None:
    first = kustomer.get("/v1/auth/tokens/current")
    second = kustomer.get("/v1/auth/tokens/current")
    assert first.headers["x-ratelimit-limit"] == "1000"
    assert int(second.headers["x-ratelimit-remaining"]) == int(first.headers["x-ratelimit-remaining"]) - 1
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_org_limit_can_be_enforced(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.kustomer.configure({"org_limit_per_minute": 2, "enforce_org_limit": True})
    statuses = [kustomer.get("/v1/auth/tokens/current").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    with pytest.raises(ValueError):
        crm_sandbox.kustomer.configure({"org_limit_per_minute": "many"})


def test_seed_stores_without_http(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    record = crm_sandbox.kustomer.seed("orders", {"title": "seeded", "externalId": "s1"})
    assert kustomer.get("/v1/klasses/orders/externalId=s1").json()["data"]["id"] == record["id"]
    assert crm_sandbox.journal() == [crm_sandbox.journal()[0]]
    with pytest.raises(ValueError, match="title"):
        crm_sandbox.kustomer.seed("orders", {"title": 1})


def test_concurrent_creates_with_one_external_id_store_one_object(
    crm_sandbox: Sandbox, kustomer: KustomerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = crm_sandbox.kustomer.state
    owner_of = state.external_id_owner
    gaps: list[tuple[float, float]] = []

    def slow_owner_of(klass: str, external_id: str) -> str | None:
        # Widen the gap between "is the externalId taken?" and the store, so creates that are not
        # serialised by the emulator's lock would all pass the check and all store.
        owner = owner_of(klass, external_id)
        if owner is None:
            started = time.time()
            time.sleep(1.0)  # room for the other creates to arrive on a loaded machine
            gaps.append((started, time.time()))
        return owner

    monkeypatch.setattr(state, "external_id_owner", slow_owner_of)
    crm_sandbox.inject("kustomer", Latency(4.0, path_pattern="tokens"))  # still unanswered after the creates
    together = threading.Barrier(8)

    def create(_: int) -> int:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {crm_sandbox.token('kustomer')}"
            url = kustomer.base_url + "/v1/klasses/orders"
            together.wait(timeout=TIMEOUT)
            return session.post(url, json={"title": "x", "externalId": "same"}, timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=9) as pool:
        slow = pool.submit(kustomer.get, "/v1/auth/tokens/current")
        statuses = sorted(pool.map(create, range(8)))
        assert not slow.done(), "a delayed request must not block others"
        assert slow.result().status_code == 200
    assert statuses == [201] + [409] * 7
    assert crm_sandbox.kustomer.state.count("orders") == 1
    # The creates really overlapped: others arrived while the first sat between check and store.
    [(started, ended)] = gaps
    arrivals = [entry.timestamp for entry in crm_sandbox.journal("kustomer") if entry.method == "POST"]
    assert sum(started <= arrived <= ended for arrived in arrivals) >= 2, (started, ended, arrivals)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2026-01-02T03:04:05Z", True),
        ("2026-01-02T03:04:05.123456789+05:30", True),
        ("2026-01-02T03:04-01:00", True),
        ("2026-01-02T03:04:05", False),
        ("2026-01-02 03:04:05Z", False),
        ("2026-13-02T03:04:05Z", False),
        ("2026-01-02T03:04:05+0100", False),
        (1767323045, False),
    ],
)
def test_datetime_rule(value: object, valid: bool) -> None:
    assert is_datetime_with_offset(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("https://example.com/a?b=c", True),
        ("http://localhost:8080", True),
        ("example.com", False),
        ("mailto:a@example.com", False),
        ("https://exa mple.com", False),
        ("https://", False),
    ],
)
def test_url_rule(value: str, valid: bool) -> None:
    assert is_http_url(value) is valid
