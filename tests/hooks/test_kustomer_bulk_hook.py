"""KustomerHook's bulk jobs over loopback HTTP: what the server received, and how every form of answer is read.

Kustomer documents the fields of a job and of its batches but not every detail of their documents
(see :mod:`airflow_provider_crm.models.kustomer_bulk`), so each undocumented choice is replayed
both ways. A submit is never sent twice: the server counts what arrived.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_crm.errors import CrmOutcomeUnknownError, CrmValidationError
from airflow_provider_crm.hooks.kustomer import NO_SUCH_JOB, KustomerHook
from airflow_provider_crm.models.kustomer_bulk import BulkJob, results_by_client_ref
from airflow_provider_crm.models.kustomer_requests import KObjectCreateRequest, KObjectUpdateRequest
from tests.conftest import use_connection
from tests.contracts.hooks import replay_connection
from tests.contracts.replay import Canned, ReplayServer
from tests.contracts.samples import by_name, canned, load
from tests.hooks.test_transport_limits import raw_server

SAMPLES = by_name(load("kustomer"))
JOB_ID = "5b3bddb67f8469003df370a4"
CUSTOMER = "5a96dac46dd73800112fab20"


def creates(count: int, klass: str = "orders") -> dict[str, KObjectCreateRequest]:
    return {f"row-{n}": KObjectCreateRequest.build(klass, title=f"Order {n}") for n in range(1, count + 1)}


def replayed(monkeypatch: pytest.MonkeyPatch, server: ReplayServer) -> KustomerHook:
    """A hook on ``server`` that sends each request once (a resend would show as a second request anyway)."""
    return KustomerHook(kustomer_conn_id=replay_connection(monkeypatch, server, "kustomer", "token"))


def read_job(monkeypatch: pytest.MonkeyPatch, body: Any) -> BulkJob:
    with ReplayServer(Canned(200, body)) as server:
        job = replayed(monkeypatch, server).get_bulk(JOB_ID)
    assert [(r.method, r.path) for r in server.received] == [("GET", f"/v1/bulk/{JOB_ID}")]
    return job


# -- the job, in each form Kustomer might write it -----------------------------------------------


JOB_FORMS = {
    # form: (answer, expected (status, batches_complete, batches_total, done))
    "guide_flat_under_data": (
        {"data": {"type": "bulk", "id": JOB_ID, "status": "queued"}},
        ("queued", None, None, False),
    ),
    "flat_without_data": (
        {"id": JOB_ID, "status": "running", "batches": {"complete": 1, "total": 3}},
        ("running", 1, 3, False),
    ),
    "batches_beside_attributes": (
        {"data": {"id": JOB_ID, "attributes": {"status": "complete"}, "batches": {"complete": "2", "total": "2"}}},
        ("complete", 2, 2, True),
    ),
    "unknown_status_kept": (
        {"data": {"id": JOB_ID, "attributes": {"status": "paused"}}},
        ("paused", None, None, False),
    ),
    "completed_flag_only": ({"data": {"id": JOB_ID, "attributes": {"completed": True}}}, (None, None, None, True)),
    "counts_not_numbers": (
        {"data": {"id": JOB_ID, "attributes": {"status": "running", "batches": {"complete": True, "total": "x"}}}},
        ("running", None, None, False),
    ),
}


@pytest.mark.parametrize("form", list(JOB_FORMS))
def test_job_is_read_in_every_form(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body, expected = JOB_FORMS[form]
    job = read_job(monkeypatch, body)
    assert (job.id, job.status, job.batches_complete, job.batches_total, job.done) == (JOB_ID, *expected)


def test_job_without_an_id_is_a_vendor_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="names no bulk job id") as caught:
        read_job(monkeypatch, {"data": {"type": "bulk", "attributes": {"status": "queued"}}})
    assert type(caught.value).__name__ == "CrmApiError"


# -- batches and per-item results --------------------------------------------------------------------


def read_results(monkeypatch: pytest.MonkeyPatch, body: Any) -> dict[str, Any]:
    with ReplayServer(Canned(200, body)) as server:
        batches = replayed(monkeypatch, server).get_bulk_results(JOB_ID)
    assert [(r.method, r.path) for r in server.received] == [("GET", f"/v1/bulk/{JOB_ID}/batches")]
    return {"batches": batches, "items": results_by_client_ref(batches)}


def test_batches_as_a_bare_array_with_optional_fields_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's diagram: ``[ { successCount, failureCount, objectIds, results[] } ]``; nothing else given."""
    read = read_results(monkeypatch, [{"objectIds": ["a1"], "results": [{"_clientRef": "r1", "objectId": "a1"}]}, {}])
    first, second = read["batches"]
    assert (first.status, first.object_ids, first.success_count, first.failure_count) == (None, ("a1",), None, None)
    assert (second.object_ids, second.errors, second.results, second.completed_at) == ((), (), (), None)
    item = read["items"]["r1"]
    assert (item.outcome, item.object_id, item.status, item.error) == ("ok", "a1", None, None)


def test_batches_without_client_refs_have_no_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kustomer returns ``results`` only when the items carried ``_clientRef``; entries without one are skipped."""
    body = {
        "data": [
            {
                "attributes": {
                    "status": "complete",
                    "objectIds": ["a1"],
                    "successCount": 1,
                    "results": [{"status": "created"}],
                }
            }
        ]
    }
    read = read_results(monkeypatch, body)
    assert read["items"] == {} and read["batches"][0].success_count == 1


ITEM_FORMS = {
    # entry (and the batch's errors): expected (outcome, object_id, error, code)
    "created": ({"status": "created", "id": "a1"}, [], ("ok", "a1", None, None)),
    "updated_with_a_message": ({"status": "updated", "id": "a1", "message": "Updated"}, [], ("ok", "a1", None, None)),
    "error_string": (
        {"status": "failed", "error": "title is required"},
        [],
        ("failed", None, "title is required", None),
    ),
    "jsonapi_error": (
        {"error": {"status": "400", "code": "bad_request", "title": "Bad Request", "detail": "custom.xStr too long"}},
        [],
        ("failed", None, "custom.xStr too long", "bad_request"),
    ),
    "errors_list": ({"errors": [{"message": "a"}, {"message": "b", "code": "c"}]}, [], ("failed", None, "a; b", "c")),
    "message_of_a_failed_status": (
        {"status": "error", "message": "duplicate externalId"},
        [],
        ("failed", None, "duplicate externalId", None),
    ),
    "failed_without_a_reason": (
        {"status": "rejected"},
        [],
        ("failed", None, "Kustomer reported the item as 'rejected'", None),
    ),
    "reason_in_batch_errors": (
        {"status": "failed"},
        [
            {"_clientRef": "r1", "code": "conflict", "message": "externalId exists"},
            {"_clientRef": "other", "message": "x"},
        ],
        ("failed", None, "externalId exists", "conflict"),
    ),
    "unknown_status_without_id_or_error": ({"status": "pending"}, [], ("unknown", None, None, None)),
    "unknown_status_with_id": ({"status": "weird", "id": "a1"}, [], ("unknown", "a1", None, None)),
}


@pytest.mark.parametrize("form", list(ITEM_FORMS))
def test_item_result_is_read_in_every_form(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, batch_errors, expected = ITEM_FORMS[form]
    body = {
        "data": [
            {"attributes": {"status": "complete", "errors": batch_errors, "results": [{"_clientRef": "r1", **entry}]}}
        ]
    }
    item = read_results(monkeypatch, body)["items"]["r1"]
    assert (item.outcome, item.object_id, item.error, item.code) == expected
    assert item.status == entry.get("status"), "Kustomer's word is kept as it came"


def test_results_gathered_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"data": [{"results": [{"_clientRef": f"r{n}", "status": "created", "id": f"a{n}"}]} for n in (1, 2)]}
    items = read_results(monkeypatch, body)["items"]
    assert {ref: item.object_id for ref, item in items.items()} == {"r1": "a1", "r2": "a2"}


# -- what a submit sends --------------------------------------------------------------------------


def submit_answer() -> Canned:
    return canned(SAMPLES["bulk-create-submit-201-queued"])


def test_create_items_carry_client_ref_and_customer_in_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    items = {
        "row-1": KObjectCreateRequest.build("orders", title="A", customer_id=CUSTOMER, custom={"totalNum": 1}),
        "row-2": KObjectCreateRequest.build("orders", title="B", external_id="b-2"),
    }
    with ReplayServer(submit_answer()) as server:
        job = replayed(monkeypatch, server).submit_bulk_create("orders", items)
    assert (job.id, job.status, job.done) == (JOB_ID, "queued", False)
    [sent] = server.received
    assert (sent.method, sent.path) == ("POST", "/v1/klasses/orders/bulk")
    assert sent.body == [
        {"title": "A", "custom": {"totalNum": 1}, "customer": CUSTOMER, "_clientRef": "row-1"},
        {"title": "B", "externalId": "b-2", "_clientRef": "row-2"},
    ]


def test_update_items_carry_id_rev_and_client_ref(monkeypatch: pytest.MonkeyPatch) -> None:
    items = {"row-1": KObjectUpdateRequest.build("orders", "a1", title="A", rev=3)}
    with ReplayServer(Canned(200, SAMPLES["bulk-update-submit-200"].body)) as server:
        replayed(monkeypatch, server).submit_bulk_update("orders", items)
    [sent] = server.received
    assert (sent.method, sent.path, sent.body) == (
        "PUT",
        "/v1/klasses/orders/bulk",
        [{"id": "a1", "title": "A", "rev": 3, "_clientRef": "row-1"}],
    )


REFUSED = {
    "over_100": (lambda: creates(101), "1 to 100 items per request, got 101"),
    "empty": (lambda: {}, "1 to 100 items per request, got 0"),
    "other_klass": (lambda: creates(2, klass="invoices"), "validated for klass 'invoices'"),
    "blank_client_ref": (
        lambda: {" ": KObjectCreateRequest.build("orders", title="A")},
        "client ref must be a non-empty string",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_batches_are_refused_before_sending(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    items, message = REFUSED[case]
    with ReplayServer(submit_answer()) as server, pytest.raises(CrmValidationError, match=message):
        replayed(monkeypatch, server).submit_bulk_create("orders", items())
    assert server.received == [], "nothing sent"


def test_exactly_100_items_go_in_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    with ReplayServer(submit_answer()) as server:
        replayed(monkeypatch, server).submit_bulk_create("orders", creates(100))
    assert [len(r.body) for r in server.received] == [100]


# -- a submit is never sent twice -------------------------------------------------------------


def retrying_hook(monkeypatch: pytest.MonkeyPatch, url: str) -> KustomerHook:
    """A hook that would retry (5 attempts): only the submit's own rule keeps it to one request."""
    extra = {"max_attempts": 5, "read_timeout": 5}
    return KustomerHook(
        kustomer_conn_id=use_connection(
            monkeypatch, "kustomer_bulk", {"conn_type": "kustomer", "host": url, "password": "token", "extra": extra}
        )
    )


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that reads each request whole, keeps it, and closes the connection without answering."""
    received: list[bytes] = []

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(0.3)
        rest = b""
        try:
            while chunk := conn.recv(65536):
                rest += chunk
        except TimeoutError:
            pass
        received.append(rest)

    for url in raw_server(answer):
        yield url, received


@pytest.mark.parametrize("method", ["submit_bulk_create", "submit_bulk_update"])
def test_submit_is_not_resent_after_the_connection_is_lost(
    method: str, dropping_server: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = dropping_server
    hook = retrying_hook(monkeypatch, url)
    items = (
        creates(2)
        if method == "submit_bulk_create"
        else {"row-1": KObjectUpdateRequest.build("orders", "a1", title="A")}
    )
    with pytest.raises(
        CrmOutcomeUnknownError, match=r"the job may or may not exist.*Look the records up by external id"
    ):
        getattr(hook, method)("orders", items)
    hook.close()
    assert len(received) == 1, "one connection, one submit: never resent"


UNKNOWN_ANSWERS = {
    "server_error": Canned(
        503, {"errors": [{"status": "503", "code": "service_unavailable", "title": "Service Unavailable"}]}
    ),
    "no_job_id": Canned(201, {"data": {"type": "bulk", "attributes": {"status": "queued"}}}),
    "not_json": Canned(201, "<html>gateway</html>"),
}


@pytest.mark.parametrize("answer", list(UNKNOWN_ANSWERS))
@pytest.mark.parametrize("method", ["submit_bulk_create", "submit_bulk_update"])
def test_submit_with_an_unknown_outcome_is_sent_once(method: str, answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5xx, or a 2xx that names no job, may mean the job exists: raise, never resend (a PUT included)."""
    items = (
        creates(1)
        if method == "submit_bulk_create"
        else {"row-1": KObjectUpdateRequest.build("orders", "a1", title="A")}
    )
    with ReplayServer(UNKNOWN_ANSWERS[answer], submit_answer()) as server:
        hook = retrying_hook(monkeypatch, server.url)
        with pytest.raises(CrmOutcomeUnknownError, match="not sent again"):
            getattr(hook, method)("orders", items)
        hook.close()
    assert len(server.received) == 1


def test_submit_refused_with_429_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 means Kustomer did not take the job: resending it is safe, and the job is returned."""
    too_many = Canned(429, {"errors": [{"status": "429", "code": "too_many_requests"}]}, {"Retry-After": "0"})
    with ReplayServer(too_many, submit_answer()) as server:
        job = retrying_hook(monkeypatch, server.url).submit_bulk_create("orders", creates(2))
    assert job.id == JOB_ID
    assert [r.body for r in server.received] == [server.received[0].body] * 2


# -- test_connection names the bulk role -----------------------------------------------------------


def token_record(roles: list[str] | None) -> Canned:
    attributes = {"name": "etl"} if roles is None else {"name": "etl", "roles": roles}
    return Canned(200, {"data": {"type": "token", "id": "t1", "attributes": attributes}})


ROLE_CASES = {
    # case: (answers, ok, requests sent)
    "roles_lack_bulk_read": ([token_record(["org.permission.kobject.create"])], False, 1),
    "roles_hold_bulk_read": ([token_record(["org.permission.kobject.create", "org.permission.bulk.read"])], True, 1),
    "roles_hold_legacy_bulk_read": ([token_record(["org.user.bulk.read"])], True, 1),
    "no_roles_listed_job_read_forbidden": (
        [token_record(None), canned(SAMPLES["bulk-get-403-missing-role"])],
        False,
        2,
    ),
    "no_roles_listed_job_not_found": ([token_record(None), canned(SAMPLES["bulk-get-404-unknown-job"])], True, 2),
}


@pytest.mark.parametrize("case", list(ROLE_CASES))
def test_connection_names_a_missing_bulk_read_role(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    answers, expected_ok, sent = ROLE_CASES[case]
    with ReplayServer(*answers) as server:
        ok, message = replayed(monkeypatch, server).test_connection()
    assert ok is expected_ok, message
    named = "org.permission.bulk.read" in message and "org.user.bulk.read" in message
    assert named is not expected_ok, message
    paths = ["/v1/auth/tokens/current", f"/v1/bulk/{NO_SUCH_JOB}"][:sent]
    assert [(r.method, r.path) for r in server.received] == [("GET", path) for path in paths], "read-only"
