"""KustomerHook.upsert_kobject against the sandbox, and the pure plan it is built on."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.models.kustomer import KObject
from airflow_provider_crm.models.kustomer_upsert import (
    CREATE,
    UNCHANGED,
    UPDATE,
    KObjectUpsert,
    differing_fields,
    plan_upsert,
)
from airflow_provider_crm.sandbox import DropAfterStore, DropBeforeStore, HttpStatus, Sandbox, ServerError
from tests.hooks.test_kustomer_hook import KLASS, kustomer_hook  # noqa: F401 (the ``hook`` fixture)


def traffic(sandbox: Sandbox, since: int = 0) -> list[tuple[str, int | None]]:
    """What the server received (from the ``since``-th request on), as (method, status), in arrival order."""
    return [(entry.method, entry.status) for entry in sandbox.journal("kustomer")[since:]]


def stored(sandbox: Sandbox, external_id: str) -> list[dict[str, Any]]:
    return [o for o in sandbox.state("kustomer").kobjects(KLASS) if o["externalId"] == external_id]


def kobject(attributes: dict[str, Any], kobject_id: str = "k1") -> KObject:
    return KObject.from_response({"data": {"type": "kobject.order", "id": kobject_id, "attributes": attributes}})


# -- the plan (no HTTP) ---------------------------------------------------------------------------


def request(**fields: Any) -> KObjectUpsert:
    return KObjectUpsert.build(KLASS, "o-1", **({"title": "Order 1"} | fields))


def test_plan_creates_when_nothing_is_stored() -> None:
    plan = plan_upsert(request(custom={"totalNum": 5}, customer_id="c1", company_id="co1"), None)
    assert plan.action == CREATE
    assert plan.body == {"title": "Order 1", "externalId": "o-1", "custom": {"totalNum": 5}, "company": "co1"}
    assert plan.bulk_item() == plan.body | {"customer": "c1"}, "bulk creates carry the customer in the body"


def test_plan_updates_with_the_whole_record_when_a_value_differs() -> None:
    held = kobject({"title": "Order 1", "externalId": "o-1", "custom": {"totalNum": 5, "noteStr": "x"}})
    plan = plan_upsert(request(custom={"totalNum": 6, "noteStr": "x"}, company_id="co1"), held)
    assert (plan.action, plan.kobject_id, plan.changed) == (UPDATE, "k1", ("custom.totalNum",))
    assert plan.body == {"title": "Order 1", "custom": {"totalNum": 6, "noteStr": "x"}}, "no key, no links"
    assert plan.bulk_item() == {"id": "k1", **plan.body}


def test_plan_leaves_an_object_that_holds_every_value() -> None:
    held = kobject(
        {
            "title": "Order 1",
            "custom": {"totalNum": 5.0, "paidBool": True, "shippedAt": "2026-01-02T03:04:05.000Z", "otherStr": "y"},
            "tags": ["a"],
            "importedAt": "2026-01-01T01:00:00+01:00",
        }
    )
    record = request(
        custom={"totalNum": 5, "paidBool": True, "shippedAt": "2026-01-02T03:04:05Z", "goneStr": None},
        tags=["a"],
        imported_at="2026-01-01T00:00:00Z",
    )
    plan = plan_upsert(record, held)
    assert (plan.action, plan.kobject_id, plan.body) == (UNCHANGED, "k1", {})
    with pytest.raises(ValueError, match="nothing to send"):
        plan.bulk_item()


@pytest.mark.parametrize(
    ("sent", "held", "differs"),
    [
        ({"custom": {"paidBool": True}}, {"custom": {"paidBool": 1}}, ["custom.paidBool"]),
        ({"custom": {"countNum": 1}}, {"custom": {"countNum": True}}, ["custom.countNum"]),
        ({"custom": {"noteStr": None}}, {"custom": {"noteStr": "x"}}, ["custom.noteStr"]),
        ({"custom": {"noteStr": "x"}}, {"custom": {}}, ["custom.noteStr"]),
        ({"custom": {"noteStr": "x"}}, {}, ["custom"]),
        ({"custom": {"noteStr": None}}, {"custom": None}, []),
        ({"description": "d"}, {"title": "t"}, ["description"]),  # not returned: cannot tell, so send
        ({"data": {"a": 1}}, {"data": {"a": True}}, ["data"]),
        ({"tags": ["a", "b"]}, {"tags": ["b", "a"]}, ["tags"]),
        (
            {"custom": {"noteStr": "2026-01-01T00:00:00Z"}},
            {"custom": {"noteStr": "2026-01-01T00:00:00+00:00"}},
            ["custom.noteStr"],
        ),
    ],
)
def test_what_counts_as_different(sent: dict, held: dict, differs: list[str]) -> None:
    assert differing_fields(sent, held) == differs


@pytest.mark.parametrize(
    ("external_id", "fields", "field"),
    [
        (None, {"title": "t"}, "external_id"),
        ("  ", {"title": "t"}, "external_id"),
        ("o-1", {}, "title"),
        ("o-1", {"title": "t", "custom": {"totalNum": "12"}}, "custom"),
        ("o-1", {"title": "t", "customer_id": ""}, "customer_id"),
    ],
)
def test_bad_records_are_refused_naming_field_and_record(external_id: Any, fields: dict, field: str) -> None:
    with pytest.raises(CrmValidationError) as caught:
        KObjectUpsert.build(KLASS, external_id, **fields)
    assert caught.value.field == field
    assert "upsert in klass 'ecomm-order'" in str(caught.value)


# -- the hook over HTTP ---------------------------------------------------------------------------


def test_first_upsert_creates_then_unchanged_then_updates(hook: KustomerHook, sandbox: Sandbox) -> None:
    first, action = hook.upsert_kobject(KLASS, "o-1", title="Order 1", custom={"totalNum": 10}, customer_id="cust-1")
    assert action == "created"
    assert traffic(sandbox) == [("GET", 404), ("POST", 201)]
    assert sandbox.journal("kustomer")[1].segments == ("v1", "customers", "cust-1", "klasses", KLASS)

    same, action = hook.upsert_kobject(KLASS, "o-1", title="Order 1", custom={"totalNum": 10}, customer_id="cust-1")
    assert (same.id, action) == (first.id, "unchanged")
    assert traffic(sandbox, since=2) == [("GET", 200)], "nothing to write: one request"

    updated, action = hook.upsert_kobject(KLASS, "o-1", title="Order 1b", custom={"totalNum": 12}, customer_id="cust-1")
    assert (updated.id, action) == (first.id, "updated")
    assert traffic(sandbox, since=3) == [("GET", 200), ("PUT", 200)], "a lookup and one PUT, no POST"
    put = sandbox.journal("kustomer")[4]
    assert put.segments == ("v1", "klasses", KLASS, first.id)
    assert put.body == {"title": "Order 1b", "custom": {"totalNum": 12}}
    [record] = stored(sandbox, "o-1")
    assert (record["title"], record["custom"], record["customer"]) == ("Order 1b", {"totalNum": 12}, "cust-1")


def test_create_that_meets_an_external_id_created_meanwhile_becomes_an_update(
    hook: KustomerHook, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer creates the object right after our lookup answered 404: our POST gets 409."""
    app = sandbox.kustomer
    dispatch = app.dispatch

    def lookup_then_someone_creates(request: Any) -> Any:
        response = dispatch(request)
        if request.method == "GET" and request.segments[-1] == "externalId=o-7" and response.status == 404:
            app.seed(KLASS, {"title": "theirs", "externalId": "o-7", "custom": {"totalNum": 1}})
        return response

    monkeypatch.setattr(app, "dispatch", lookup_then_someone_creates)
    kobject, action = hook.upsert_kobject(KLASS, "o-7", title="ours", custom={"totalNum": 2})
    assert action == "updated"
    assert traffic(sandbox) == [("GET", 404), ("POST", 409), ("GET", 200), ("PUT", 200)]
    [record] = stored(sandbox, "o-7")
    assert record["id"] == kobject.id
    assert (record["title"], record["custom"]) == ("ours", {"totalNum": 2})


def test_conflict_with_an_object_that_already_holds_the_values_is_unchanged(
    hook: KustomerHook, sandbox: Sandbox
) -> None:
    theirs = sandbox.kustomer.seed(KLASS, {"title": "same", "externalId": "o-8", "custom": {"totalNum": 3}})
    # The lookup answers as it would have a moment before the other create landed.
    sandbox.inject("kustomer", HttpStatus(status=404, method="GET", path_pattern="externalId=o-8$"))
    kobject, action = hook.upsert_kobject(KLASS, "o-8", title="same", custom={"totalNum": 3})
    assert (kobject.id, action) == (theirs["id"], "unchanged")
    assert traffic(sandbox) == [("GET", 404), ("POST", 409), ("GET", 200)]
    assert len(stored(sandbox, "o-8")) == 1


def test_lost_create_answer_is_reconciled_by_the_external_id(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", DropAfterStore(method="POST"))
    kobject, action = hook.upsert_kobject(KLASS, "o-2", title="Order 2", custom={"totalNum": 4})
    assert action == "created"
    [record] = stored(sandbox, "o-2")
    assert record["id"] == kobject.id
    methods = [method for method, _ in traffic(sandbox)]
    assert methods.count("POST") == 1, "the create was not sent twice"
    assert "PUT" not in methods, "the object found holds our values: nothing to update"


def test_lost_create_whose_lookup_finds_another_writers_object_updates_it(
    hook: KustomerHook, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our create never landed (connection dropped), but another writer's did before the check."""
    app = sandbox.kustomer
    dispatch = app.dispatch
    lookups: list[int] = []

    def someone_creates_before_the_second_lookup(request: Any) -> Any:
        if request.method == "GET" and request.segments[-1] == "externalId=o-9":
            lookups.append(1)
            if len(lookups) == 2:
                app.seed(KLASS, {"title": "theirs", "externalId": "o-9", "custom": {"totalNum": 1}})
        return dispatch(request)

    monkeypatch.setattr(app, "dispatch", someone_creates_before_the_second_lookup)
    sandbox.inject("kustomer", DropBeforeStore(method="POST"))
    kobject, action = hook.upsert_kobject(KLASS, "o-9", title="ours", custom={"totalNum": 2})
    assert action == "updated"
    assert traffic(sandbox) == [("GET", 404), ("POST", None), ("GET", 200), ("PUT", 200)]
    [record] = stored(sandbox, "o-9")
    assert (record["id"], record["title"], record["custom"]) == (kobject.id, "ours", {"totalNum": 2})


def test_update_answered_5xx_is_sent_again(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.kustomer.seed(KLASS, {"title": "t", "externalId": "o-3", "custom": {"totalNum": 1}})
    sandbox.inject("kustomer", ServerError(status=503, method="PUT"))
    _, action = hook.upsert_kobject(KLASS, "o-3", title="t", custom={"totalNum": 2})
    assert action == "updated"
    assert traffic(sandbox) == [("GET", 200), ("PUT", 503), ("PUT", 200)]
    assert stored(sandbox, "o-3")[0]["custom"] == {"totalNum": 2}


def test_object_gone_before_the_update_is_looked_up_again(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.kustomer.seed(KLASS, {"title": "t", "externalId": "o-4"})
    sandbox.inject("kustomer", HttpStatus(status=404, method="PUT"))
    _, action = hook.upsert_kobject(KLASS, "o-4", title="t2")
    assert action == "updated"
    assert traffic(sandbox) == [("GET", 200), ("PUT", 404), ("GET", 200), ("PUT", 200)]


def test_bad_input_sends_nothing(hook: KustomerHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmValidationError, match="totalNum"):
        hook.upsert_kobject(KLASS, "o-5", title="t", custom={"totalNum": "ten"})
    with pytest.raises(CrmValidationError, match="external_id is required"):
        hook.upsert_kobject(KLASS, "", title="t")
    assert sandbox.journal("kustomer") == []
