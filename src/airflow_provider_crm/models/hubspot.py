"""HubSpot CRM objects: property serialisation, batch inputs and the objects HubSpot returns.

HubSpot property values travel as strings. Python values are turned into HubSpot's formats:

=====================  ==============================================================
value                  sent as
=====================  ==============================================================
``str``                unchanged
``bool``               ``"true"`` / ``"false"``
int, float, Decimal    plain decimal string (``"17"``, ``"12.5"``, never ``1e-07``)
``datetime.date``      epoch milliseconds of midnight UTC (HubSpot date properties)
aware ``datetime``     epoch milliseconds (naive datetimes are refused)
list, tuple, set       items joined with ``;`` (multi-checkbox), sets sorted
``None``               left out, so upstream nulls never wipe CRM values; ``""`` (clears
                       the property) when ``clear_nulls=True``
=====================  ==============================================================

Anything else (dicts, bytes, NaN, ...) raises before a request is sent.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_crm.errors import CrmValidationError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _decimal_text(value: int | float | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        value = Decimal(repr(value))
    if not value.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _epoch_millis(moment: dt.datetime) -> str:
    delta = moment - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000)


def serialise_value(value: Any) -> str:
    """One non-null property value as HubSpot expects it; ``ValueError`` says what is wrong."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return _decimal_text(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: give a timezone-aware datetime so the instant is unambiguous")
        return _epoch_millis(value)
    if isinstance(value, dt.date):
        return _epoch_millis(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        texts = []
        for item in items:
            if item is None or isinstance(item, (list, tuple, set, frozenset, dict)):
                raise ValueError(f"multi-value items must be scalars, got {type(item).__name__}")
            text = serialise_value(item)
            if ";" in text:
                raise ValueError(f"multi-value item {text[:50]!r} contains ';', HubSpot's separator")
            texts.append(text)
        return ";".join(texts)
    raise ValueError(f"{type(value).__name__} values cannot be sent as a HubSpot property")


def serialise_properties(properties: Any, *, record: str, clear_nulls: bool = False) -> dict[str, str]:
    """All properties of one record as strings; raises :class:`CrmValidationError` naming the field."""
    if not isinstance(properties, Mapping):
        raise CrmValidationError(
            f"{record}: properties must map property names to values, got {type(properties).__name__}",
            field="properties",
            record=record,
        )
    result: dict[str, str] = {}
    for name, value in properties.items():
        if not isinstance(name, str) or not name.strip():
            raise CrmValidationError(
                f"{record}: property name {name!r} must be a non-empty string",
                field="properties",
                record=record,
            )
        if value is None:
            if clear_nulls:
                result[name] = ""
            continue
        try:
            result[name] = serialise_value(value)
        except ValueError as exc:
            raise CrmValidationError(f"{record}: property {name!r}: {exc}", field=name, record=record) from None
    return result


class HubSpotObject(BaseModel):
    """A CRM object as HubSpot returns it (``SimplePublicObject``)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    created_at: str | None = Field(default=None, alias="createdAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")
    archived: bool = False
    new: bool | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, body: Any) -> HubSpotObject:
        if not isinstance(body, dict):
            raise ValueError("object document is not a JSON object")
        return cls.model_validate({**body, "id": str(body.get("id", "")), "raw": body})


class BatchInputError(BaseModel):
    """One input a batch call did not apply, with HubSpot's reason."""

    model_config = ConfigDict(frozen=True)

    index: int
    """Position of the input in the list the caller passed."""
    id: str
    status: str | None = None
    category: str | None = None
    message: str = ""
    context: dict[str, Any] = Field(default_factory=dict)


class BatchResult(BaseModel):
    """What a batch update/upsert did: objects written and inputs refused, in input order."""

    model_config = ConfigDict(frozen=True)

    results: list[HubSpotObject] = Field(default_factory=list)
    errors: list[BatchInputError] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors
