from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models import kustomer_requests
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
        ({"totalNum": True}, "custom.totalNum: must be a number, got bool (got True)"),
        ({"totalNum": "12"}, "custom.totalNum: must be a number, got str (got '12')"),
        ({"totalNum": float("nan")}, "finite"),
        ({"shippedAt": dt.datetime(2026, 1, 1)}, "custom.shippedAt: 2026-01-01 00:00:00 has no time zone offset"),
        ({"shippedAt": "2026-01-01"}, "no time zone offset"),
        ({"shippedAt": "yesterday"}, "not an ISO 8601"),
        ({"noteStr": "x" * 1025}, "at most 1024"),
        ({"noteTxt": 5}, "must be a string"),
        ({"paidBool": "true"}, "must be true or false"),
        ({"siteUrl": "javascript:alert(1)"}, "http(s) URL"),
        ({"siteUrl": "example.com"}, "http(s) URL"),
        ({"colour": "red"}, "custom.colour: has no known type suffix"),
        ({"Num": 1}, "custom.Num: has no known type suffix"),
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


def test_id_suffix_is_a_reference_to_another_object() -> None:
    # developer.kustomer.com/docs/concepts/custom-attributes: primaryOrderId "5822a4a5aa5f92110005d69a"
    sent = body(KObjectCreate, title="t", custom={"primaryOrderId": "5822a4a5aa5f92110005d69a", "parentId": None})
    assert sent["custom"] == {"primaryOrderId": "5822a4a5aa5f92110005d69a", "parentId": None}
    assert body(KObjectUpdate, custom={"primaryOrderId": "abc"}) == {"custom": {"primaryOrderId": "abc"}}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("", "non-empty id string"), ("   ", "non-empty id string"), (5, "got int"), (["a"], "got list")],
)
def test_id_values_must_be_non_empty_strings(value: object, fragment: str) -> None:
    for model, fields in ((KObjectCreate, {"title": "t"}), (KObjectUpdate, {})):
        with pytest.raises(CrmValidationError) as caught:
            body(model, **fields, custom={"primaryOrderId": value})
        assert "custom.primaryOrderId: " in str(caught.value) and fragment in str(caught.value)
        assert caught.value.field == "custom"


def test_create_body_carries_every_documented_field() -> None:
    sent = body(
        KObjectCreate,
        title="Order 1",
        external_id="o-1",
        company_id="5d811e40de762100130174a8",
        description="two items",
        icon="truck-delivery",
        images=["https://cdn.example.com/a.jpg"],
        tags=["vip"],
        data={"source": "shop"},
        custom={"totalNum": 1},
        created_at="2016-11-12T05:39:36.976Z",
        imported_at=pendulum.datetime(2016, 11, 12, tz="UTC"),
    )
    assert sent == {
        "title": "Order 1",
        "externalId": "o-1",
        "company": "5d811e40de762100130174a8",
        "description": "two items",
        "icon": "truck-delivery",
        "images": ["https://cdn.example.com/a.jpg"],
        "tags": ["vip"],
        "data": {"source": "shop"},
        "custom": {"totalNum": 1},
        "createdAt": "2016-11-12T05:39:36.976000+00:00",
        "importedAt": "2016-11-12T00:00:00+00:00",
    }


def test_update_body_carries_rev_parent_and_the_create_fields_less_customer_and_company() -> None:
    sent = body(
        KObjectUpdate,
        rev=3,
        parent="5826ab180fcc2514008b2a94",
        icon="cart",
        images=["https://cdn.example.com/b.jpg"],
        created_at="2016-11-12T05:39:36Z",
        imported_at="2016-11-12T05:39:36Z",
    )
    assert sent == {
        "rev": 3,
        "parent": "5826ab180fcc2514008b2a94",
        "icon": "cart",
        "images": ["https://cdn.example.com/b.jpg"],
        "createdAt": "2016-11-12T05:39:36+00:00",
        "importedAt": "2016-11-12T05:39:36+00:00",
    }
    for field in ("company_id", "customer_id", "customer", "company"):
        with pytest.raises(CrmValidationError):
            body(KObjectUpdate, **{field: "5d811e40de762100130174a8"})
    with pytest.raises(CrmValidationError):
        body(KObjectCreate, title="t", rev=1)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rev": True}, "rev"),
        ({"rev": "3"}, "rev"),
        ({"rev": -1}, "rev"),
        ({"rev": 1.5}, "rev"),
        ({"parent": ""}, "parent"),
        ({"parent": 7}, "parent"),
        ({"icon": "x" * 65}, "icon"),
        ({"images": ["javascript:alert(1)"]}, "images.0"),
        ({"images": ["https://a.example/x"] * 2}, "images"),
        ({"images": [f"https://a.example/{i}" for i in range(21)]}, "images"),
        ({"tags": ["a"] * 2}, "tags"),
        ({"tags": [""]}, "tags.0"),
        ({"title": "x" * 257}, "title"),
        ({"external_id": "x" * 257}, "external_id"),
        ({"description": "x" * 10241}, "description"),
        ({"created_at": "2016-11-12"}, "created_at"),
        ({"custom": {f"a{i}Num": i for i in range(101)}}, "custom"),
    ],
)
def test_new_and_documented_limits_name_the_field(fields: dict, field: str) -> None:
    with pytest.raises(CrmValidationError) as caught:
        body(KObjectUpdate, **fields)
    assert caught.value.field == field


def test_keyword_arguments_of_the_hook_name_the_model_fields() -> None:
    """The hook's typed keyword arguments and the request models list the same fields."""
    create = set(kustomer_requests.CREATE_FIELDS)
    assert {"title", *kustomer_requests.KObjectCreateFields.__annotations__} == create
    assert {"title", "external_id", *kustomer_requests.KObjectUpsertFields.__annotations__} == create
    assert set(kustomer_requests.KObjectUpdateFields.__annotations__) == set(kustomer_requests.UPDATE_FIELDS)
