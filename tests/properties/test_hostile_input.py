"""Any input yields a valid request or a validation error naming the field, never anything else."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import unquote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.hooks.hubspot import prepare_batch_input
from airflow_provider_crm.models.hubspot import serialise_properties
from airflow_provider_crm.models.kaiten import CustomerReplacement, CustomerSlug
from airflow_provider_crm.models.kustomer import KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.microbase import CustomerUpdate
from airflow_provider_crm.models.validation import validate_model
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


def must_be_json(body: object) -> None:
    json.dumps(body, allow_nan=False)


def check(model: type, fields: dict) -> None:
    try:
        built = validate_model(model, fields, record="r")
    except CrmValidationError as exc:
        assert exc.field, "the error names the field"
        assert "r:" in str(exc), "the error names the record"
        return
    must_be_json(built.to_body())


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


@settings(max_examples=200)
@given(
    fields=st.fixed_dictionaries(
        {"id": values},
        optional={"email": values, "first_name": values, "last_name": values, "status": values, "tags": values},
    )
)
def test_microbase_model(fields: dict) -> None:
    check(CustomerUpdate, fields)


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


def test_known_nasty_values_do_not_slip_through() -> None:
    # A few values the strategies may not reach, pinned.
    check(KObjectCreate, {"title": "t", "custom": {"xNum": Decimal("NaN")}})
    check(KObjectCreate, {"title": "t", "custom": {"xAt": dt.datetime(2026, 1, 1)}})
    check(CustomerUpdate, {"id": "x", "email": "a@b.c\n"})
