from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models.kustomer import KObject, KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.validation import validate_model


def body(model: type, **fields: object) -> dict:
    return validate_model(model, fields, record="test record").to_body()


def test_create_body_uses_kustomer_names_and_drops_unset_fields() -> None:
    sent = body(
        KObjectCreate,
        title="Order 1",
        external_id="o-1",
        imported_at=pendulum.datetime(2026, 3, 1, 12, tz="Europe/Paris"),
        custom={"totalNum": 12.5, "shippedAt": "2026-03-01T10:00:00Z", "noteTxt": None},
    )
    assert sent == {
        "title": "Order 1",
        "externalId": "o-1",
        "importedAt": "2026-03-01T11:00:00+00:00",
        "custom": {"totalNum": 12.5, "shippedAt": "2026-03-01T10:00:00+00:00", "noteTxt": None},
    }


def test_update_sends_only_what_is_given() -> None:
    assert body(KObjectUpdate, custom={"statusStr": "shipped"}) == {"custom": {"statusStr": "shipped"}}


@pytest.mark.parametrize(
    ("custom", "fragment"),
    [
        ({"totalNum": True}, "'totalNum' (Num) must be a number"),
        ({"totalNum": "12"}, "'totalNum' (Num) must be a number"),
        ({"totalNum": float("nan")}, "finite"),
        ({"shippedAt": dt.datetime(2026, 1, 1)}, "'shippedAt' (At)"),
        ({"shippedAt": "2026-01-01"}, "no time zone offset"),
        ({"shippedAt": "yesterday"}, "not an ISO 8601"),
        ({"noteStr": "x" * 1025}, "at most 1024"),
        ({"noteTxt": 5}, "must be a string"),
        ({"paidBool": "true"}, "must be true or false"),
        ({"siteUrl": "javascript:alert(1)"}, "http(s) URL"),
        ({"siteUrl": "example.com"}, "http(s) URL"),
        ({"colour": "red"}, "'colour' has no known type suffix"),
        ({"Num": 1}, "'Num' has no known type suffix"),
    ],
)
def test_bad_custom_attributes_name_the_attribute(custom: dict, fragment: str) -> None:
    with pytest.raises(CrmValidationError) as caught:
        body(KObjectCreate, title="t", custom=custom)
    assert fragment in str(caught.value)
    assert "test record" in str(caught.value)
    assert caught.value.field == "custom"


def test_title_is_required_on_create_only() -> None:
    with pytest.raises(CrmValidationError, match="title"):
        body(KObjectCreate, custom={})
    with pytest.raises(CrmValidationError, match="title"):
        body(KObjectCreate, title="")
    assert body(KObjectUpdate, title="new") == {"title": "new"}


@pytest.mark.parametrize(
    "fields",
    [
        {"title": 5},
        {"title": "t", "tags": ["a", 1]},
        {"title": "t", "data": {"x": float("inf")}},
        {"title": "t", "data": ["not", "a", "dict"]},
        {"title": "t", "unknown": 1},
    ],
)
def test_other_fields_are_type_checked(fields: dict) -> None:
    with pytest.raises(CrmValidationError):
        body(KObjectCreate, **fields)


def test_kobject_parses_both_relationship_spellings() -> None:
    doc = {
        "data": {
            "id": "abc",
            "attributes": {"title": "t", "externalId": "e", "rev": 3, "custom": {"aNum": 1}},
            "relationships": {
                "klass": {"link": {"self": "/v1/klasses/k"}, "data": {"type": "klass", "id": "k"}},
                "customer": {"links": {"self": "/c"}, "data": {"type": "customer", "id": "c1"}},
            },
        }
    }
    kobject = KObject.from_response(doc)
    assert (kobject.id, kobject.klass, kobject.customer_id, kobject.rev) == ("abc", "k", "c1", 3)
    assert kobject.external_id == "e"
