"""Any input yields a request the vendor accepts, or a validation error naming the field; never anything else.

"Accepted" is checked twice: the body is strict JSON, and the sandbox's own request rules (our
reading of each vendor's docs) find nothing wrong with it. Values the strategies rarely reach are
pinned below, each asserted refused with its field named.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.hooks.hubspot import prepare_batch_input
from airflow_provider_crm.models.hubspot import serialise_properties
from airflow_provider_crm.models.kaiten import CustomerReplacement, CustomerSlug
from airflow_provider_crm.models.kustomer import KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.microbase import CustomerUpdate
from airflow_provider_crm.models.validation import validate_model
from airflow_provider_crm.sandbox.vendors.hubspot import validation as hubspot_validation
from airflow_provider_crm.sandbox.vendors.kaiten import validation as kaiten_validation
from airflow_provider_crm.sandbox.vendors.kustomer import validation as kustomer_validation
from airflow_provider_crm.sandbox.vendors.microbase import validation as microbase
from airflow_provider_crm.transport import api_path

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(max_size=1100, alphabet="ab"),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
custom_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["Num", "At", "Str", "Txt", "Bool", "Url"]).flatmap(
        lambda s: st.text(max_size=6).map(lambda p: p + s)
    ),
)
hostile_ids = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["a/b", "..", ".", "%2F", "?x=1", "#frag", "a\nb", "a\r\nX-Injected: 1", "ünï/../..", " ", ""]),
)
# Near-misses of valid addresses: a valid one, or one with a character added where checks often slip.
emails = st.one_of(
    values,
    st.emails(),
    st.tuples(st.emails(), st.sampled_from(["\n", "\r\n", " ", "\t", ",", "..", "@"])).map(lambda pair: "".join(pair)),
    st.tuples(st.sampled_from(["\n", " ", "<", '"']), st.emails()).map(lambda pair: "".join(pair)),
)


def _kustomer_create(body: dict[str, Any]) -> list[str]:
    return [f"{e.attribute}: {e.message}" for e in kustomer_validation.validate_create(body)]


def _kustomer_update(body: dict[str, Any]) -> list[str]:
    return [f"{e.attribute}: {e.message}" for e in kustomer_validation.validate_update(body)]


def _kaiten_replace(body: dict[str, Any]) -> list[str]:
    return [f"{e.location}: {e.message}" for e in kaiten_validation.validate_replace(body)]


def _microbase_update(body: dict[str, Any]) -> list[str]:
    """What the service refuses in ``customer.update``: its schema, ``isemail``, then the model's enum."""
    problems = microbase.schema_errors(body, microbase.UPDATE_SCHEMA)
    email = body.get("email")
    if microbase.js_truthy(email) and isinstance(email, str) and not microbase.is_email(email):
        problems.append(f"email: {email!r} is not an email address")
    if "status" in body:
        problems += microbase.model_errors({"status": body["status"]})
    return problems


SANDBOX_RULES = {
    KObjectCreate: _kustomer_create,
    KObjectUpdate: _kustomer_update,
    CustomerReplacement: _kaiten_replace,
    CustomerUpdate: _microbase_update,
}


def must_be_json(body: object) -> None:
    json.dumps(body, allow_nan=False)


def check(model: type[BaseModel], fields: dict[str, Any]) -> None:
    """Refused naming a real field and the record, or accepted with a body the sandbox accepts too."""
    try:
        built = validate_model(model, fields, record="r")
    except CrmValidationError as exc:
        assert exc.field, "the error names the field"
        assert exc.field == "record" or exc.field.split(".")[0] in model.model_fields, exc.field
        assert "r:" in str(exc), "the error names the record"
        return
    body = built.to_body()  # type: ignore[attr-defined]
    must_be_json(body)
    refused = SANDBOX_RULES[model](body)
    assert refused == [], f"accepted {fields!r}, but the vendor refuses the body {body!r}: {refused}"


def assert_refused(model: type[BaseModel], fields: dict[str, Any], field: str, mentions: str | None = None) -> None:
    """``fields`` must be refused before sending, naming ``field`` (and ``mentions`` in the message)."""
    with pytest.raises(CrmValidationError) as caught:
        built = validate_model(model, fields, record="r")
        pytest.fail(f"accepted {fields!r} as {built.to_body()!r}")  # type: ignore[attr-defined]
    assert caught.value.field == field, str(caught.value)
    assert "r:" in str(caught.value)
    if mentions is not None:
        assert mentions in str(caught.value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "title": values,
            "custom": st.one_of(values, st.dictionaries(custom_keys, values, max_size=5)),
            "external_id": values,
            "description": values,
            "tags": values,
            "data": values,
            "imported_at": values,
        },
    )
)
def test_kustomer_models(fields: dict) -> None:
    check(KObjectCreate, fields)
    check(KObjectUpdate, {k: v for k, v in fields.items() if k != "imported_at"})


@settings(max_examples=200)
@given(name=values, external_customer_id=values, domain=values)
def test_kaiten_model(name: object, external_customer_id: object, domain: object) -> None:
    check(CustomerReplacement, {"name": name, "external_customer_id": external_customer_id, "domain": domain})


@settings(max_examples=300)
@given(
    fields=st.fixed_dictionaries(
        {"id": st.one_of(st.text(min_size=1, max_size=10), values)},
        optional={"email": emails, "first_name": values, "last_name": values, "status": values, "tags": values},
    )
)
def test_microbase_model(fields: dict) -> None:
    check(CustomerUpdate, fields)


@settings(max_examples=300)
@given(email=emails)
def test_microbase_emails(email: object) -> None:
    check(CustomerUpdate, {"id": "c-1", "email": email})


@settings(max_examples=300)
@given(
    properties=st.one_of(values, st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), values, max_size=6)),
    clear=st.booleans(),
)
def test_hubspot_serialiser(properties: object, clear: bool) -> None:
    try:
        sent = serialise_properties(properties, record="r", clear_nulls=clear)
    except CrmValidationError as exc:
        assert exc.field
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in sent.items())
    hubspot_validation.read_properties(sent, "properties")


@settings(max_examples=200)
@given(
    item=st.one_of(
        values, st.fixed_dictionaries({"id": values, "properties": values}, optional={"id_property": values})
    ),
    upsert=st.booleans(),
)
def test_hubspot_batch_input(item: object, upsert: bool) -> None:
    try:
        body = prepare_batch_input(0, item, clear_nulls=False, need_id_property=upsert)
    except CrmValidationError as exc:
        assert "#0" in str(exc)
        return
    must_be_json(body)
    hubspot_validation.parse_batch({"inputs": [body]}, upsert=upsert)


@settings(max_examples=500)
@given(value=hostile_ids)
def test_ids_stay_one_path_segment(value: str) -> None:
    try:
        path = api_path("v1", "klasses", "orders", value)
    except CrmValidationError:
        assert value.strip() in ("", ".", "..")
        return
    prefix = "/v1/klasses/orders/"
    assert path.startswith(prefix)
    escaped = path[len(prefix) :]
    assert not any(c in escaped for c in "/?#\r\n ") and escaped.isascii()
    assert unquote(escaped) == value


@settings(max_examples=200)
@given(slug=values)
def test_kaiten_slugs(slug: object) -> None:
    try:
        checked = validate_model(CustomerSlug, {"customer_slug": slug}, record="r")
    except CrmValidationError as exc:
        assert exc.field == "customer_slug"
        return
    assert checked.customer_slug == slug
    assert kaiten_validation.check_slug(slug) == []


NAIVE = dt.datetime(2026, 1, 1, 12, 0)

PINNED: list[tuple[type[BaseModel], dict[str, Any], str, str | None]] = [
    (KObjectCreate, {"title": "t", "custom": {"xNum": Decimal("NaN")}}, "custom", "custom.xNum: "),
    (KObjectCreate, {"title": "t", "custom": {"xNum": float("nan")}}, "custom", "custom.xNum: "),
    (KObjectCreate, {"title": "t", "custom": {"xNum": float("-inf")}}, "custom", "custom.xNum: "),
    (KObjectCreate, {"title": "t", "custom": {"xNum": True}}, "custom", "custom.xNum: "),
    (KObjectCreate, {"title": "t", "custom": {"xAt": NAIVE}}, "custom", "custom.xAt: "),
    (KObjectCreate, {"title": "t", "custom": {"xAt": "2026-01-01T12:00:00"}}, "custom", "custom.xAt: "),
    (KObjectCreate, {"title": "t", "custom": {"xUrl": "https://example.com/a\n"}}, "custom", "custom.xUrl: "),
    (KObjectCreate, {"title": "t", "imported_at": NAIVE}, "imported_at", None),
    (KObjectCreate, {"title": "t", "data": {"x": float("nan")}}, "data", None),
    (KObjectUpdate, {"custom": {"xAt": NAIVE}}, "custom", "custom.xAt: "),
    (CustomerUpdate, {"id": "x", "email": "a@b.c\n"}, "email", None),
    (CustomerUpdate, {"id": "x", "email": "a@example.com\r\n"}, "email", None),
    (CustomerUpdate, {"id": "x", "email": "\na@example.com"}, "email", None),
    (CustomerUpdate, {"id": "x", "email": " "}, "email", None),
    (CustomerReplacement, {"name": "n", "domain": "acme.io\n"}, "domain", None),
    (CustomerSlug, {"customer_slug": "acme-corp\n"}, "customer_slug", None),
]


@pytest.mark.parametrize(
    ("model", "fields", "field", "mentions"), PINNED, ids=[f"{case[0].__name__}-{case[1]!r}" for case in PINNED]
)
def test_known_nasty_values_are_refused_naming_the_field(
    model: type[BaseModel], fields: dict[str, Any], field: str, mentions: str | None
) -> None:
    assert_refused(model, fields, field, mentions)


@pytest.mark.parametrize(
    ("value", "field"),
    [(Decimal("NaN"), "amount"), (float("inf"), "amount"), (NAIVE, "closed_at"), ([1, None], "amount")],
    ids=repr,
)
def test_known_nasty_hubspot_values_are_refused_naming_the_property(value: object, field: str) -> None:
    with pytest.raises(CrmValidationError) as caught:
        sent = serialise_properties({field: value}, record="r")
        pytest.fail(f"accepted {value!r} as {sent!r}")
    assert caught.value.field == field
