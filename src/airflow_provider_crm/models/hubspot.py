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
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_crm.errors import CrmError, CrmValidationError

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
    """What a batch update/upsert did: objects written and inputs refused, in input order.

    ``written`` maps each applied input's position to its object; ``read_back`` lists the
    positions HubSpot's answer did not settle, settled by reading the orders back (written when
    they hold the values sent, see :func:`value_held`; refused otherwise). ``requests`` counts
    every request sent (writes and read-backs), ``isolation_requests`` those spent splitting
    batches HubSpot refused whole.
    """

    model_config = ConfigDict(frozen=True)

    results: list[HubSpotObject] = Field(default_factory=list)
    errors: list[BatchInputError] = Field(default_factory=list)
    written: dict[int, HubSpotObject] = Field(default_factory=dict)
    read_back: list[int] = Field(default_factory=list)
    requests: int = 0
    isolation_requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


class BatchIncompleteError(CrmError):
    """A batch call stopped part-way: some inputs were written or refused before a request failed.

    ``result`` holds what is settled; ``uncertain`` are positions of the request that failed
    (sent; applied or not is unknown), ``unsent`` positions never sent. ``cause`` is the error
    that stopped the call (also ``__cause__``).
    """

    def __init__(self, result: BatchResult, *, uncertain: list[int], unsent: list[int], cause: CrmError) -> None:
        self.result = result
        self.uncertain = uncertain
        self.unsent = unsent
        self.cause = cause
        super().__init__(
            f"HubSpot batch stopped part-way: {len(result.written)} input(s) written, {len(result.errors)} "
            f"refused, {len(uncertain)} of unknown outcome, {len(unsent)} not sent; stopped by: {cause}"
        )


# -- batch requests and answers -------------------------------------------------------------

OBJECT_ID_PROPERTY = "hs_object_id"
TRACE_PREFIX = "input-"
BATCH_SIZE = 100
"""HubSpot's documented cap on inputs per batch call."""


def checked_batch_size(batch_size: int) -> int:
    """``batch_size`` if HubSpot takes that many inputs per call; ``ValueError`` otherwise."""
    if not 1 <= batch_size <= BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {BATCH_SIZE} (HubSpot's cap), not {batch_size!r}")
    return batch_size


def trace_id(index: int) -> str:
    """The ``objectWriteTraceId`` of input ``index``: unique within a call, so errors can name it."""
    return f"{TRACE_PREFIX}{index}"


def checked_id_property(id_property: Any, record: str) -> str:
    """``id_property`` if it can name a property; :class:`CrmValidationError` naming ``record`` otherwise."""
    if not isinstance(id_property, str) or not id_property.strip():
        raise CrmValidationError(f"{record}: id_property must be a property name", field="id_property", record=record)
    return id_property


def prepare_batch_input(index: int, item: Any, *, clear_nulls: bool, need_id_property: bool) -> dict[str, Any]:
    """One batch input as HubSpot wants it; raises :class:`CrmValidationError` naming the input."""
    record = f"HubSpot batch input #{index}"
    if not isinstance(item, Mapping):
        raise CrmValidationError(f"{record}: must be a mapping with id and properties", record=record)
    order_id = item.get("id")
    if not isinstance(order_id, (str, int)) or isinstance(order_id, bool) or not str(order_id).strip():
        raise CrmValidationError(f"{record}: id is required", field="id", record=record)
    record = f"HubSpot batch input #{index} (id {order_id!r})"
    body: dict[str, Any] = {
        "id": str(order_id),
        "properties": serialise_properties(item.get("properties"), record=record, clear_nulls=clear_nulls),
        # A unique trace id per input makes HubSpot report failures per input (207) and lets
        # each error be matched back to its input.
        "objectWriteTraceId": trace_id(index),
    }
    id_property = item.get("id_property") or item.get("idProperty")
    if id_property:
        body["idProperty"] = checked_id_property(id_property, record)
    elif need_id_property:
        raise CrmValidationError(f"{record}: upsert needs id_property", field="id_property", record=record)
    return body


def request_key(body: Mapping[str, Any]) -> tuple[str, str]:
    """What a batch input addresses: ``(idProperty, id)``, compared without case or padding.

    HubSpot refuses a batch that names one record twice; erring towards "same" only costs an
    extra request.
    """
    return (str(body.get("idProperty") or OBJECT_ID_PROPERTY), str(body["id"]).strip().casefold())


def split_requests(bodies: Sequence[Mapping[str, Any]], size: int) -> list[list[int]]:
    """Positions grouped into requests of at most ``size``, in input order, no record twice in one.

    A repeated record starts a new request; requests are sent in order, so its last value wins.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    keys: set[tuple[str, str]] = set()
    for position, body in enumerate(bodies):
        key = request_key(body)
        if len(current) >= size or key in keys:
            groups.append(current)
            current, keys = [], set()
        current.append(position)
        keys.add(key)
    if current:
        groups.append(current)
    return groups


def _strings(value: Any) -> list[str]:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, (str, int)) and not isinstance(item, bool)]
    return []


def _contexts(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The error's own ``context`` and those of its ``errors[]`` details."""
    found = [error.get("context")]
    found.extend(detail.get("context") for detail in error.get("errors") or [] if isinstance(detail, Mapping))
    return [context for context in found if isinstance(context, Mapping)]


def error_trace_ids(error: Mapping[str, Any]) -> list[str]:
    """Every trace id an error may carry: ``id``, or ``objectWriteTraceId`` (string or list) in its
    ``context`` or in a detail's ``context``. Where HubSpot puts it is not documented."""
    found = _strings(error.get("id"))
    for context in _contexts(error):
        found.extend(_strings(context.get("objectWriteTraceId")))
    return found


def error_object_ids(error: Mapping[str, Any]) -> list[str]:
    """The record ids an ``OBJECT_NOT_FOUND`` error names in ``context.ids``.

    Other categories may use ``ids`` for other records (a conflict names the record that
    holds the value), so only missing-record errors are matched by id.
    """
    if error.get("category") != "OBJECT_NOT_FOUND":
        return []
    found: list[str] = []
    for context in _contexts(error):
        found.extend(_strings(context.get("ids")))
    return found


# Applied with ``fullmatch``: with ``match``, ``$`` also matches before a final newline, and
# ``int``/``Decimal`` ignore surrounding whitespace, so ``"12\n"`` would pass for ``12``.
_EPOCH_MS = re.compile(r"-?[0-9]{1,15}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _instant(text: str) -> dt.datetime | None:
    if _EPOCH_MS.fullmatch(text):
        return _EPOCH + dt.timedelta(milliseconds=int(text))
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _number(text: str) -> Decimal | None:
    if _NUMBER.fullmatch(text) is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def value_held(sent: str, held: Any) -> bool:
    """Whether a stored value is the one sent, allowing for the forms HubSpot answers in.

    HubSpot may echo a number, date or multi-checkbox in another spelling than it was sent
    (``17.50`` as ``17.5``, epoch milliseconds as ISO 8601, options in another order), so
    numbers, instants and option sets are compared by meaning; ``""`` (clear) matches unset.
    """
    if held is None or held == "":
        return sent == ""
    held = str(held)
    if sent == held or (sent.casefold() == held.casefold() and sent.casefold() in ("true", "false")):
        return True
    sent_number, held_number = _number(sent), _number(held)
    if sent_number is not None and held_number is not None:
        return sent_number == held_number
    sent_instant, held_instant = _instant(sent), _instant(held)
    if sent_instant is not None and held_instant is not None:
        return sent_instant == held_instant
    if ";" in sent or ";" in held:
        return set(filter(None, sent.split(";"))) == set(filter(None, held.split(";")))
    return False


def holds(obj: HubSpotObject, properties: Mapping[str, str]) -> bool:
    """Whether ``obj`` holds every sent property value."""
    return all(value_held(value, obj.properties.get(name)) for name, value in properties.items())
