"""KustomerHook's full KObject bodies and optimistic locking, checked on what the sandbox received and holds."""

from __future__ import annotations

import pytest

from airflow_provider_crm.errors import CrmConflictError, CrmOutcomeUnknownError, CrmValidationError
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import DropAfterStore, DropBeforeStore, Sandbox
from tests.conftest import use_connection
from tests.contracts.replay import Canned, ReplayServer
from tests.hooks.test_kustomer_hook import KLASS, kustomer_hook  # noqa: F401 (the ``hook`` fixture)

ORDER_ID = "5822a4a5aa5f92110005d69a"
COMPANY = "5d811e40de762100130174a8"
IMAGE = "https://cdn.example.com/hoodie.jpg"


def puts(sandbox: Sandbox) -> list:
    return [entry for entry in sandbox.journal("kustomer") if entry.method == "PUT"]


def test_create_sends_every_documented_field(hook: KustomerHook, sandbox: Sandbox) -> None:
    created = hook.create_kobject(
        KLASS,
        title="Order 1059",
        external_id="o-1059",
        company_id=COMPANY,
        description="3 items",
        icon="truck-delivery",
        images=[IMAGE],
        tags=["vip"],
        data={"lines": 3},
        custom={"primaryOrderId": ORDER_ID, "totalNum": 64.67},
        created_at="2016-11-12T05:39:36Z",
        imported_at="2016-11-12T05:39:36Z",
    )

    [post] = sandbox.writes("kustomer")
    assert post.body == {
        "title": "Order 1059",
        "externalId": "o-1059",
        "company": COMPANY,
        "description": "3 items",
        "icon": "truck-delivery",
        "images": [IMAGE],
        "tags": ["vip"],
        "data": {"lines": 3},
        "custom": {"primaryOrderId": ORDER_ID, "totalNum": 64.67},
        "createdAt": "2016-11-12T05:39:36+00:00",
        "importedAt": "2016-11-12T05:39:36+00:00",
    }
    assert (created.klass, created.rev) == (KLASS, 0), "a new KObject, read from the sandbox's kobject.<klass> answer"
    held = sandbox.state("kustomer").get(KLASS, created.id)
    assert held is not None
    assert (held["company"], held["icon"], held["images"]) == (COMPANY, "truck-delivery", [IMAGE])
    assert held["custom"]["primaryOrderId"] == ORDER_ID
    assert held["createdAt"] == "2016-11-12T05:39:36+00:00"


def test_update_sends_rev_parent_and_media_fields(hook: KustomerHook, sandbox: Sandbox) -> None:
    seeded = sandbox.kustomer.seed(KLASS, {"title": "Order 1"})
    current = hook.get_kobject(KLASS, seeded["id"]).rev
    assert current == 0, "a new KObject is at rev 0, as in Kustomer's examples; 0 is sent, not dropped"

    updated = hook.update_kobject(
        KLASS,
        seeded["id"],
        rev=current,
        parent=ORDER_ID,
        icon="cart",
        images=[IMAGE],
        custom={"replacesId": ORDER_ID},
    )

    [put] = puts(sandbox)
    assert put.body == {
        "rev": current,
        "parent": ORDER_ID,
        "icon": "cart",
        "images": [IMAGE],
        "custom": {"replacesId": ORDER_ID},
    }
    assert updated.rev == current + 1
    held = sandbox.state("kustomer").get(KLASS, seeded["id"])
    assert held is not None
    assert (held["rev"], held["parent"], held["icon"], held["custom"]) == (
        current + 1,
        ORDER_ID,
        "cart",
        {"replacesId": ORDER_ID},
    )


def test_stale_rev_is_a_conflict_naming_rev_and_is_not_resent(hook: KustomerHook, sandbox: Sandbox) -> None:
    seeded = sandbox.kustomer.seed(KLASS, {"title": "Order 1", "custom": {"statusStr": "placed"}}, rev=4)

    with pytest.raises(CrmConflictError) as caught:
        hook.update_kobject(KLASS, seeded["id"], rev=3, custom={"statusStr": "shipped"})

    assert caught.value.status == 409
    own_words, _, vendor_words = caught.value.message.partition("Kustomer said:")
    assert "rev 3 is stale" in own_words and vendor_words, "the hook's own words name rev, then Kustomer's follow"
    assert len(puts(sandbox)) == 1, "a stale rev is never resent"
    held = sandbox.state("kustomer").get(KLASS, seeded["id"])
    assert held is not None and (held["rev"], held["custom"]) == (4, {"statusStr": "placed"}), "nothing changed"


def test_a_409_without_rev_still_names_rev_among_the_causes(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.kustomer.seed(KLASS, {"title": "taken", "externalId": "o-1"})
    other = sandbox.kustomer.seed(KLASS, {"title": "other"})

    with pytest.raises(CrmConflictError) as caught:
        hook.update_kobject(KLASS, other["id"], external_id="o-1")

    assert "stale rev" in str(caught.value) and "externalId" in str(caught.value)
    assert len(puts(sandbox)) == 1


@pytest.mark.parametrize("value", ["", "  ", 42, None])
def test_bad_id_attribute_sends_nothing(hook: KustomerHook, sandbox: Sandbox, value: object) -> None:
    seeded = sandbox.kustomer.seed(KLASS, {"title": "Order 1"})
    custom = {"primaryOrderId": value}
    if value is None:
        # null clears a reference, as for every type: it is sent.
        hook.update_kobject(KLASS, seeded["id"], custom=custom)
        assert [entry.body for entry in puts(sandbox)] == [{"custom": {"primaryOrderId": None}}]
        return
    with pytest.raises(CrmValidationError, match="primaryOrderId"):
        hook.create_kobject(KLASS, title="t", custom=custom)
    with pytest.raises(CrmValidationError, match="primaryOrderId"):
        hook.update_kobject(KLASS, seeded["id"], custom=custom)
    assert sandbox.journal("kustomer") == []


def test_conflict_body_that_does_not_name_rev_is_still_reported_as_a_stale_rev(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kustomer documents 409 as "typically related to optimistic locking" but shows no body for it:
    # whatever the body says, the hook's error names rev.
    body = {"errors": [{"code": "conflict", "message": "Conflict", "meta": {}}]}
    with ReplayServer(Canned(409, body)) as server:
        use_connection(monkeypatch, "kustomer_409", {"conn_type": "kustomer", "host": server.url, "password": "t"})
        hook = KustomerHook(kustomer_conn_id="kustomer_409")
        with pytest.raises(CrmConflictError) as caught:
            hook.update_kobject(KLASS, ORDER_ID, rev=7, title="x")
        hook.close()
    assert "rev 7 is stale" in str(caught.value) and caught.value.code == "conflict"
    assert [(r.method, r.body) for r in server.received] == [("PUT", {"title": "x", "rev": 7})]


def test_update_with_rev_applied_but_answer_lost_is_not_resent(hook: KustomerHook, sandbox: Sandbox) -> None:
    # Resending would meet a 409: the first attempt already moved the revision on.
    seeded = sandbox.kustomer.seed(KLASS, {"title": "o"}, rev=2)
    sandbox.inject("kustomer", DropAfterStore(method="PUT"))

    updated = hook.update_kobject(KLASS, seeded["id"], rev=2, custom={"shippedAt": "2026-01-02T03:04:05+01:00"})

    assert [entry.status for entry in puts(sandbox)] == [None], "read, found applied, not resent"
    assert [entry.method for entry in sandbox.journal("kustomer")] == ["PUT", "GET"]
    assert updated.rev == 3
    held = sandbox.state("kustomer").get(KLASS, seeded["id"])
    assert held is not None and (held["rev"], held["custom"]) == (3, {"shippedAt": "2026-01-02T02:04:05+00:00"})


def test_update_with_rev_lost_before_it_was_applied_is_resent(hook: KustomerHook, sandbox: Sandbox) -> None:
    seeded = sandbox.kustomer.seed(KLASS, {"title": "o"}, rev=2)
    sandbox.inject("kustomer", DropBeforeStore(method="PUT"))

    updated = hook.update_kobject(KLASS, seeded["id"], rev=2, title="p")

    assert [entry.status for entry in puts(sandbox)] == [None, 200]
    assert [entry.method for entry in sandbox.journal("kustomer")] == ["PUT", "GET", "PUT"]
    assert updated.rev == 3 and updated.title == "p"


def test_update_with_rev_lost_while_another_change_landed_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    someone_else = {"data": {"type": f"kobject.{KLASS}", "id": ORDER_ID, "attributes": {"title": "theirs", "rev": 8}}}
    with ReplayServer(Canned(503, {"errors": [{"code": "unavailable"}]}), Canned(200, someone_else)) as server:
        use_connection(monkeypatch, "kustomer_lost", {"conn_type": "kustomer", "host": server.url, "password": "t"})
        hook = KustomerHook(kustomer_conn_id="kustomer_lost")
        with pytest.raises(CrmOutcomeUnknownError) as caught:
            hook.update_kobject(KLASS, ORDER_ID, rev=7, title="mine")
        hook.close()
    assert "rev 7" in str(caught.value) and "rev 8" in str(caught.value)
    assert [r.method for r in server.received] == ["PUT", "GET"], "never resent"
