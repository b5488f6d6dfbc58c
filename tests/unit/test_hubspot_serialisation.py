from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pendulum
import pytest

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models.hubspot import serialise_properties, serialise_value


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("plain", "plain"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (17, "17"),
        (-3, "-3"),
        (12.5, "12.5"),
        (1e-07, "0.0000001"),
        (1e21, "1000000000000000000000"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-0.0, "0"),
        (Decimal("19.990"), "19.99"),
        (Decimal("1E+3"), "1000"),
        (dt.date(2015, 5, 1), "1430438400000"),
        (dt.datetime(2015, 5, 1, 12, 30, tzinfo=dt.timezone.utc), "1430483400000"),
        (pendulum.datetime(2015, 5, 1, 14, 30, tz="Europe/Paris"), "1430483400000"),
        (dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc), "-1"),
        (["chocolate", "strawberry"], "chocolate;strawberry"),
        (("a",), "a"),
        ({"b", "a", "c"}, "a;b;c"),
        ([1, True, "x"], "1;true;x"),
        ([], ""),
    ],
)
def test_each_value_kind_is_serialised(value: object, sent: str) -> None:
    assert serialise_value(value) == sent


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (dt.datetime(2015, 5, 1, 12), "naive datetime"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        ({"a": 1}, "dict values cannot be sent"),
        (b"bytes", "bytes values cannot be sent"),
        (object(), "object values cannot be sent"),
        (["a;b"], "contains ';'"),
        ([None], "must be scalars"),
        ([["nested"]], "must be scalars"),
    ],
)
def test_unsupported_values_are_refused(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        serialise_value(value)
    assert fragment in str(caught.value)


def test_nulls_are_left_out_unless_clear_nulls() -> None:
    props = {"a": None, "b": 1}
    assert serialise_properties(props, record="r") == {"b": "1"}
    assert serialise_properties(props, record="r", clear_nulls=True) == {"a": "", "b": "1"}


def test_errors_name_the_record_and_property() -> None:
    with pytest.raises(CrmValidationError) as caught:
        serialise_properties({"ok": "x", "shipped_at": dt.datetime(2020, 1, 1)}, record="HubSpot order '7'")
    assert caught.value.field == "shipped_at"
    assert "HubSpot order '7'" in str(caught.value)
    assert "'shipped_at'" in str(caught.value)
    with pytest.raises(CrmValidationError, match="must map property names"):
        serialise_properties(["not", "a", "mapping"], record="r")
    with pytest.raises(CrmValidationError, match="non-empty string"):
        serialise_properties({"": "x"}, record="r")
