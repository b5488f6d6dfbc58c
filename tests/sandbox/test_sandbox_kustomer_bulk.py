"""Kustomer bulk jobs in the sandbox over real HTTP: submit, poll, batch results, limits, roles, faults.

Kustomer's bulk material (developer.kustomer.com/docs/guides/bulk-operations,
/api/core-resources/get-bulk-operation-by-id, /api/core-resources/get-bulk-operation-batches) and the
samples in tests/contracts/kustomer/bulk-*.json are what the emulator is held to.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_crm.sandbox import Chaos, DropAfterStore, DropBeforeStore, Sandbox
from tests.contracts.samples import Sample, by_name, load
from tests.contracts.shape import shape_mismatches

from .client import TIMEOUT, KustomerClient

BULK = "/v1/klasses/orders/bulk"
POLL_DEADLINE = 15.0
"""Seconds a test waits for a job to complete (the default processing time is 0.2 s)."""

BULK_SAMPLES = [sample for sample in load("kustomer") if sample.name.startswith("bulk-")]


class FakeClock:
    """A monotonic clock the test moves by hand, for the emulator's job timing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(crm_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(crm_sandbox.kustomer, "monotonic_clock", fake)
    return fake


def orders(count: int, *, prefix: str = "order", refs: bool = True) -> list[dict[str, Any]]:
    """``count`` valid create bodies with external ids (and ``_clientRef`` when ``refs``)."""
    items = []
    for number in range(count):
        item: dict[str, Any] = {
            "title": f"Order {number}",
            "externalId": f"{prefix}-{number}",
            "custom": {"orderNumberNum": number},
        }
        if refs:
            item["_clientRef"] = f"row-{number}"
        items.append(item)
    return items


def attributes(response: requests.Response) -> dict[str, Any]:
    assert response.ok, response.text
    found: dict[str, Any] = response.json()["data"]["attributes"]
    return found


def wait_complete(kustomer: KustomerClient, job_id: str) -> dict[str, Any]:
    """Poll ``GET /v1/bulk/{id}`` until the job is complete; its attributes."""
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        job = attributes(kustomer.get(f"/v1/bulk/{job_id}"))
        if job["status"] == "complete":
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {POLL_DEADLINE} s"
        time.sleep(0.02)


def batches(kustomer: KustomerClient, job_id: str) -> list[dict[str, Any]]:
    response = kustomer.get(f"/v1/bulk/{job_id}/batches")
    assert response.status_code == 200, response.text
    return [batch["attributes"] for batch in response.json()["data"]]


def results(kustomer: KustomerClient, job_id: str) -> dict[Any, dict[str, Any]]:
    """Every item's result across the job's batches, by ``_clientRef``."""
    return {result["_clientRef"]: result for batch in batches(kustomer, job_id) for result in batch["results"]}


def submit_and_wait(kustomer: KustomerClient, items: Any, method: str = "POST") -> str:
    response = kustomer.request(method, BULK, json=items)
    assert response.status_code == (201 if method == "POST" else 200), response.text
    job_id: str = response.json()["data"]["id"]
    wait_complete(kustomer, job_id)
    return job_id


def test_a_create_job_moves_queued_running_complete_and_writes_batch_by_batch(
    crm_sandbox: Sandbox, kustomer: KustomerClient, clock: FakeClock
) -> None:
    crm_sandbox.kustomer.configure({"bulk_processing_seconds": 8, "bulk_batch_size": 25})
    submitted = kustomer.post(BULK, json=orders(60))

    assert submitted.status_code == 201
    data = submitted.json()["data"]
    assert (data["type"], data["links"]["self"]) == ("bulk", f"/v1/bulk/{data['id']}")
    job = data["attributes"]
    assert (job["status"], job["completed"], job["batches"]) == ("queued", False, {"complete": 0, "total": 3})
    assert job["context"] == "api.sobjects.kobjects.bulk-create"
    assert job["payload"]["api"]["data"][0]["externalId"] == "order-0"
    assert crm_sandbox.state("kustomer").count() == 0, "nothing is written before the job runs"

    def progress() -> tuple[str, int, int]:
        job = attributes(kustomer.get(f"/v1/bulk/{data['id']}"))
        return job["status"], job["batches"]["complete"], crm_sandbox.state("kustomer").count()

    clock.advance(1)  # the first quarter of 8 s is queued
    assert progress() == ("queued", 0, 0)
    clock.advance(1.5)
    assert progress() == ("running", 0, 0)
    clock.advance(2)  # the first batch falls due at 2 + 6 / 3 = 4 s, the second at 6 s
    assert progress() == ("running", 1, 25)
    assert [batch["status"] for batch in batches(kustomer, data["id"])] == ["complete", "scheduled", "scheduled"]
    clock.advance(4)
    assert progress() == ("complete", 3, 60)

    done = attributes(kustomer.get(f"/v1/bulk/{data['id']}"))
    assert done["completed"] is True and done["updatedAt"] > done["createdAt"]
    by_ref = results(kustomer, data["id"])
    assert len(by_ref) == 60
    for number in range(60):
        held = crm_sandbox.state("kustomer").find_by_external_id("orders", f"order-{number}")
        assert held is not None and held["custom"] == {"orderNumberNum": number}
        assert by_ref[f"row-{number}"] == {"_clientRef": f"row-{number}", "status": "created", "id": held["id"]}
    first = batches(kustomer, data["id"])[0]
    assert (first["successCount"], first["failureCount"], first["errors"]) == (25, 0, [])
    assert first["objectIds"] == [by_ref[f"row-{number}"]["id"] for number in range(25)]
    assert first["completedAt"].endswith("Z")


def test_an_update_job_applies_each_item_to_its_object(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    stored = [crm_sandbox.kustomer.seed("orders", {"title": f"Order {n}", "externalId": f"o-{n}"}) for n in range(3)]
    updates = [
        {"id": record["id"], "custom": {"orderStatusStr": "shipped"}, "rev": 0, "_clientRef": f"row-{n}"}
        for n, record in enumerate(stored)
    ]

    job_id = submit_and_wait(kustomer, updates, method="PUT")

    by_ref = results(kustomer, job_id)
    for number, record in enumerate(stored):
        assert by_ref[f"row-{number}"] == {"_clientRef": f"row-{number}", "status": "updated", "id": record["id"]}
        held = crm_sandbox.state("kustomer").get("orders", record["id"])
        assert (held["custom"], held["rev"]) == ({"orderStatusStr": "shipped"}, 1)


def test_put_with_ids_applies_one_body_to_every_listed_object(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    stored = [crm_sandbox.kustomer.seed("orders", {"title": f"Order {n}"}) for n in range(2)]
    ids = ",".join(record["id"] for record in stored)

    response = kustomer.put(f"{BULK}?ids={ids}", json={"tags": ["late"]})

    assert response.status_code == 200
    assert attributes(response)["ids"] == [record["id"] for record in stored]
    wait_complete(kustomer, response.json()["data"]["id"])
    assert [crm_sandbox.state("kustomer").get("orders", record["id"])["tags"] for record in stored] == [["late"]] * 2


def single_refusal(kustomer: KustomerClient, method: str, path: str, body: Any) -> str:
    """The message the single-record endpoint answers for ``body`` (it must refuse it)."""
    response = kustomer.request(method, path, json=body)
    assert response.status_code >= 400
    return "; ".join(error.get("message") or error["detail"] for error in response.json()["errors"])


def test_per_item_errors_land_in_the_results_as_the_single_endpoint_words_them(
    crm_sandbox: Sandbox, kustomer: KustomerClient
) -> None:
    crm_sandbox.kustomer.seed("orders", {"title": "Taken", "externalId": "taken"})
    bad_custom = {"title": "Bad", "custom": {"total": 1}}
    no_title = {"externalId": "no-title"}
    taken = {"title": "Again", "externalId": "taken"}
    creates = [
        {**bad_custom, "_clientRef": "bad-custom"},
        {**no_title, "_clientRef": "no-title"},
        {**taken, "_clientRef": "taken"},
        {"title": "Twice", "externalId": "twice", "_clientRef": "twice-1"},
        {"title": "Twice", "externalId": "twice", "_clientRef": "twice-2"},
        {"title": "Fine", "_clientRef": "fine"},
    ]
    expected = {
        "bad-custom": single_refusal(kustomer, "POST", "/v1/klasses/orders", bad_custom),
        "no-title": single_refusal(kustomer, "POST", "/v1/klasses/orders", no_title),
        "taken": single_refusal(kustomer, "POST", "/v1/klasses/orders", taken),
    }

    submitted = kustomer.post(BULK, json=creates)

    assert submitted.status_code == 201, "per-item problems never refuse the submit"
    wait_complete(kustomer, submitted.json()["data"]["id"])
    by_ref = results(kustomer, submitted.json()["data"]["id"])
    for ref, message in expected.items():
        assert by_ref[ref]["status"] == "failed"
        assert by_ref[ref]["error"]["message"] == message
    assert (by_ref["taken"]["error"]["code"], by_ref["taken"]["error"]["status"]) == ("conflict", "409")
    assert by_ref["bad-custom"]["error"]["meta"] == {"pointer": "/custom/total"}
    assert by_ref["twice-1"]["status"] == "created" and by_ref["twice-2"]["status"] == "failed"
    assert by_ref["fine"]["status"] == "created"
    (batch,) = batches(kustomer, submitted.json()["data"]["id"])
    assert (batch["successCount"], batch["failureCount"]) == (2, 4)
    assert [(error["_clientRef"], error["meta"]["index"]) for error in batch["errors"]] == [
        ("bad-custom", 0),
        ("no-title", 1),
        ("taken", 2),
        ("twice-2", 4),
    ]
    assert crm_sandbox.state("kustomer").count() == 3, "the seed, twice-1 and fine"
    submits = [entry.status for entry in crm_sandbox.journal("kustomer") if entry.path == BULK]
    assert submits == [201], "one submit, answered 201"


def test_update_items_fail_as_single_updates_do(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    record = crm_sandbox.kustomer.seed("orders", {"title": "Order", "externalId": "mine"}, rev=2)
    crm_sandbox.kustomer.seed("orders", {"title": "Other", "externalId": "theirs"})
    updates = [
        {"custom": {"orderStatusStr": "x"}, "_clientRef": "no-id"},
        {"id": "000000000000000000000000", "title": "Gone", "_clientRef": "unknown"},
        {"id": record["id"], "title": "Stale", "rev": 0, "_clientRef": "stale"},
        {"id": record["id"], "externalId": "theirs", "_clientRef": "taken"},
        "not an object",
    ]

    job_id = submit_and_wait(kustomer, updates, method="PUT")

    (batch,) = batches(kustomer, job_id)
    statuses = {result["_clientRef"]: result["error"]["status"] for result in batch["results"]}
    assert statuses == {"no-id": "400", "unknown": "404", "stale": "409", "taken": "409", None: "400"}
    assert batch["failureCount"] == 5 and batch["objectIds"] == []
    assert crm_sandbox.state("kustomer").get("orders", record["id"])["title"] == "Order"


def test_results_appear_only_when_items_carry_client_refs(kustomer: KustomerClient) -> None:
    job_id = submit_and_wait(kustomer, orders(3, refs=False))

    (batch,) = batches(kustomer, job_id)
    assert "results" not in batch
    assert (batch["successCount"], len(batch["objectIds"])) == (3, 3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (orders(101), "at most 100 items; got 101"),
        ([], "at least one item"),
        ({"title": "one object"}, "JSON array"),
    ],
    ids=["101-items", "empty", "not-an-array"],
)
def test_a_submit_that_is_not_1_to_100_items_is_refused_whole(
    crm_sandbox: Sandbox, kustomer: KustomerClient, body: Any, message: str
) -> None:
    response = kustomer.post(BULK, json=body)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["code"] == "bad_request" and message in error["message"]
    assert crm_sandbox.kustomer.snapshot()["bulk_jobs"] == []
    assert crm_sandbox.journal("kustomer")[-1].stored is False


def test_invalid_json_is_400(kustomer: KustomerClient) -> None:
    response = kustomer.post(BULK, data=b"[{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "Invalid JSON" in response.json()["errors"][0]["message"]


def test_a_body_over_the_size_cap_is_413(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.kustomer.configure({"bulk_max_body_bytes": 2000})
    small, large = orders(5), orders(40)

    refused = kustomer.post(BULK, json=large)

    assert refused.status_code == 413
    error = refused.json()["errors"][0]
    assert (error["status"], error["code"]) == ("413", "payload_too_large")
    assert "2000 bytes" in error["detail"]
    assert kustomer.post(BULK, json=small).status_code == 201
    assert len(crm_sandbox.kustomer.snapshot()["bulk_jobs"]) == 1


@pytest.mark.parametrize("suffix", ["", "/batches"])
def test_an_unknown_job_is_404(kustomer: KustomerClient, suffix: str) -> None:
    response = kustomer.get(f"/v1/bulk/5b3bddb67f8469003df370ff{suffix}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["status"] == "404"


def test_reading_jobs_needs_a_bulk_read_role_and_writing_the_write_roles(
    crm_sandbox: Sandbox, kustomer: KustomerClient
) -> None:
    job_id = kustomer.post(BULK, json=orders(1)).json()["data"]["id"]
    app = crm_sandbox.kustomer

    app.roles = ("org.permission.kobject.create", "org.permission.kobject.update")
    for path in (f"/v1/bulk/{job_id}", f"/v1/bulk/{job_id}/batches"):
        refused = kustomer.get(path)
        assert refused.status_code == 403
        assert "org.permission.bulk.read" in refused.json()["errors"][0]["detail"]

    app.roles = ("org.user.bulk.read",)  # the legacy role still works
    assert kustomer.get(f"/v1/bulk/{job_id}").status_code == 200
    assert kustomer.post(BULK, json=orders(1, prefix="x")).status_code == 403
    assert kustomer.put(BULK, json=[{"id": "x", "title": "y"}]).status_code == 403
    assert len(app.snapshot()["bulk_jobs"]) == 1


def test_a_submit_counts_once_against_the_org_limit_and_polls_count_too(
    crm_sandbox: Sandbox, kustomer: KustomerClient
) -> None:
    crm_sandbox.kustomer.configure({"org_limit_per_minute": 3, "enforce_org_limit": True})

    submitted = kustomer.post(BULK, json=orders(100))
    assert submitted.status_code == 201
    assert submitted.headers["x-ratelimit-remaining"] == "2", "100 items, one request"
    job_id = submitted.json()["data"]["id"]
    assert kustomer.get(f"/v1/bulk/{job_id}").headers["x-ratelimit-remaining"] == "1"
    assert kustomer.get(f"/v1/bulk/{job_id}/batches").headers["x-ratelimit-remaining"] == "0"
    assert kustomer.get(f"/v1/bulk/{job_id}").status_code == 429


def test_drop_after_store_keeps_the_job_so_its_records_can_be_found_by_external_id(
    crm_sandbox: Sandbox, kustomer: KustomerClient
) -> None:
    crm_sandbox.inject("kustomer", DropAfterStore(method="POST", path_pattern="/bulk$"))

    with pytest.raises(requests.ConnectionError):
        kustomer.post(BULK, json=orders(30))

    (entry,) = crm_sandbox.journal("kustomer")
    assert (entry.stored, entry.status, entry.fault) == (True, None, "drop_after_store")
    (job,) = crm_sandbox.kustomer.snapshot()["bulk_jobs"]
    assert job["items"] == 30
    deadline = time.monotonic() + POLL_DEADLINE
    while kustomer.get("/v1/klasses/orders/externalId=order-29").status_code == 404:
        assert time.monotonic() < deadline, "the lost job never completed"
        time.sleep(0.02)
    for number in range(30):
        assert kustomer.get(f"/v1/klasses/orders/externalId=order-{number}").status_code == 200
    assert crm_sandbox.state("kustomer").count() == 30, "each record exactly once"


def test_drop_before_store_keeps_nothing(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    crm_sandbox.inject("kustomer", DropBeforeStore(method="POST", path_pattern="/bulk$"))

    with pytest.raises(requests.ConnectionError):
        kustomer.post(BULK, json=orders(3))

    assert crm_sandbox.kustomer.snapshot()["bulk_jobs"] == []
    assert crm_sandbox.state("kustomer").count() == 0


def test_chaos_covers_the_bulk_endpoints(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    job_id = kustomer.post(BULK, json=orders(1)).json()["data"]["id"]
    crm_sandbox.chaos("kustomer", Chaos(seed=1, rate=1.0, mix={"server_error": 1.0}, path_pattern="bulk"))

    for method, path in (("POST", BULK), ("GET", f"/v1/bulk/{job_id}"), ("GET", f"/v1/bulk/{job_id}/batches")):
        response = kustomer.request(method, path, json=orders(1, prefix="chaos") if method == "POST" else None)
        assert response.status_code >= 500
    assert crm_sandbox.chaos_stats("kustomer")["server_error"] == 3
    assert len(crm_sandbox.kustomer.snapshot()["bulk_jobs"]) == 1, "a faulted submit is not processed"


def test_the_state_snapshot_lists_jobs_compactly(crm_sandbox: Sandbox, kustomer: KustomerClient) -> None:
    job_id = submit_and_wait(kustomer, [*orders(2), {"title": ""}])

    state = requests.get(f"{crm_sandbox.url}/_sandbox/state/kustomer", timeout=TIMEOUT).json()

    (job,) = state["bulk_jobs"]
    assert job == {
        "id": job_id,
        "klass": "orders",
        "operation": "create",
        "status": "complete",
        "items": 3,
        "batches": {"complete": 1, "total": 1},
        "successCount": 2,
        "failureCount": 1,
        "createdAt": job["createdAt"],
    }
    assert len(state["klasses"]["orders"]) == 2
    crm_sandbox.reset("kustomer")
    assert crm_sandbox.kustomer.snapshot()["bulk_jobs"] == []


# Kustomer's documented exchanges (tests/contracts/kustomer/bulk-*.json), asked of the sandbox.

STAGE_SHARE = {"queued": 0.0, "running": 0.5, "complete": 1.0}
"""How far into a job's processing time the sandbox must be to show each documented status."""


def documented_stage(sample: Sample) -> str:
    data = (sample.body or {}).get("data")
    if isinstance(data, list):  # the batches: complete ones are documented with their results
        return "complete"
    return str(data["attributes"]["status"]) if isinstance(data, dict) else "queued"


@pytest.mark.parametrize("sample", BULK_SAMPLES, ids=lambda sample: sample.name)
def test_sandbox_answers_each_documented_bulk_request_alike(
    sample: Sample, crm_sandbox: Sandbox, kustomer: KustomerClient, clock: FakeClock
) -> None:
    plan, app = sample.sandbox, crm_sandbox.kustomer
    app.roles = tuple(role for role in app.roles if role not in plan.get("roles_without", ()))
    request = sample.request
    path = request["path"]
    if "submit_first" in plan:
        first = by_name(BULK_SAMPLES)[plan["submit_first"]]
        submitted = kustomer.request(first.request["method"], first.request["path"], json=first.request["body"])
        assert submitted.status_code == first.status, submitted.text
        path = path.replace(plan["job_id"], submitted.json()["data"]["id"])
        clock.advance(app.bulk_processing_seconds * STAGE_SHARE[documented_stage(sample)])

    response = kustomer.request(request["method"], path, json=request.get("body"))

    assert response.status_code == sample.status, response.text
    answer = response.json()
    assert shape_mismatches(sample.body, answer, ignore=frozenset(plan.get("ignore", ()))) == []
    if response.ok and request["method"] == "GET" and isinstance(answer["data"], dict):
        assert answer["data"]["attributes"]["status"] == documented_stage(sample)
    elif response.ok and request["method"] in ("POST", "PUT"):
        assert answer["data"]["attributes"]["status"] == "queued", "a submit answers the job queued (the guide)"
