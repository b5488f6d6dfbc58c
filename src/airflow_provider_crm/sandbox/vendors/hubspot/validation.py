"""Request-body shapes of the HubSpot orders API, checked as the v3 spec declares them.

A body that does not fit its schema (wrong JSON type, unknown or missing key, a property
value that is not a string) fails as a whole with one :class:`BodyError`; whether property
*values* are valid is a separate, per-object question (see :mod:`.properties`). The spec
types every property value as a string, so a JSON number, boolean or null is refused here,
naming the property.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BATCH_INPUTS = 100

OBJECT_INPUT_KEYS = frozenset({"properties"})
CREATE_INPUT_KEYS = frozenset({"properties", "associations"})
BATCH_KEYS = frozenset({"inputs"})
BATCH_INPUT_KEYS = frozenset({"id", "properties", "idProperty", "objectWriteTraceId"})
BATCH_READ_KEYS = frozenset({"inputs", "properties", "propertiesWithHistory", "idProperty"})

_JSON_TYPES = (
    (bool, "a boolean"),
    (int, "a number"),
    (float, "a number"),
    (list, "an array"),
    (dict, "an object"),
)


class BodyError(ValueError):
    """A request body that does not match its schema; answered 400 as a whole."""

    def __init__(self, message: str, *, property_name: str | None = None, code: str = "INVALID_INPUT") -> None:
        super().__init__(message)
        self.message = message
        self.property_name = property_name
        self.code = code

    @property
    def context(self) -> dict[str, list[str]] | None:
        """``{"propertyName": [name]}`` when the error concerns one property."""
        return {"propertyName": [self.property_name]} if self.property_name is not None else None

    def details(self) -> list[dict[str, Any]]:
        """The ``errors[]`` entries of the 400 answer."""
        detail: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.context is not None:
            detail["context"] = self.context
        return [detail]


@dataclass(frozen=True)
class BatchInput:
    """One ``inputs[]`` entry of a batch update or upsert."""

    index: int
    id: str
    properties: dict[str, str] = field(default_factory=dict)
    id_property: str | None = None
    trace_id: str | None = None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__)


def _check_keys(body: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise BodyError(f'Invalid input JSON: Unrecognized field "{unknown[0]}" in {where} (known fields: {known})')


def read_properties(value: Any, where: str) -> dict[str, str]:
    """A ``properties`` map whose values are all strings."""
    if not isinstance(value, dict):
        raise BodyError(f"Invalid input JSON: {where} must be an object, not {_json_type(value)}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise BodyError(
                f'Invalid input JSON: the value of property "{name}" in {where} must be a string, '
                f"not {_json_type(item)}",
                property_name=name,
                code="INVALID_PROPERTY_VALUE_TYPE",
            )
    return dict(value)


def parse_object_input(body: Any, *, create: bool = False) -> dict[str, str]:
    """The ``properties`` of a ``SimplePublicObjectInput`` (or ``...ForCreate``) body."""
    if not isinstance(body, dict):
        raise BodyError(f"Invalid input JSON: the request body must be an object, not {_json_type(body)}")
    _check_keys(body, CREATE_INPUT_KEYS if create else OBJECT_INPUT_KEYS, "the request body")
    if "properties" not in body:
        raise BodyError('Invalid input JSON: missing required field "properties"')
    if create and not isinstance(body.get("associations", []), list):
        raise BodyError("Invalid input JSON: associations must be an array")
    return read_properties(body["properties"], "properties")


def _optional_string(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise BodyError(f"Invalid input JSON: {where}.{key} must be a string, not {_json_type(value)}")
    return value


def _batch_inputs(body: Any, allowed_keys: frozenset[str]) -> list[Any]:
    """The ``inputs`` array of a batch body, checked for shape and HubSpot's cap."""
    if not isinstance(body, dict):
        raise BodyError(f"Invalid input JSON: the request body must be an object, not {_json_type(body)}")
    _check_keys(body, allowed_keys, "the request body")
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise BodyError('Invalid input JSON: missing required field "inputs" (an array)')
    if len(inputs) > MAX_BATCH_INPUTS:
        raise BodyError(
            f"Batch input is limited to {MAX_BATCH_INPUTS} inputs; got {len(inputs)}", code="TOO_MANY_INPUTS"
        )
    return inputs


def _input_objects(inputs: list[Any], allowed: frozenset[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Each input with its index and location (``inputs[3]``), once it is an object of allowed keys."""
    for index, entry in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(entry, dict):
            raise BodyError(f"Invalid input JSON: {where} must be an object, not {_json_type(entry)}")
        _check_keys(entry, allowed, where)
        yield index, where, entry


def parse_batch(body: Any, *, upsert: bool = False) -> list[BatchInput]:
    """The inputs of a batch update/upsert body (at most :data:`MAX_BATCH_INPUTS`)."""
    parsed: list[BatchInput] = []
    for index, where, entry in _input_objects(_batch_inputs(body, BATCH_KEYS), BATCH_INPUT_KEYS):
        object_id = entry.get("id")
        if not isinstance(object_id, str) or not object_id:
            raise BodyError(f'Invalid input JSON: {where} needs "id" (a non-empty string)')
        if "properties" not in entry:
            raise BodyError(f'Invalid input JSON: {where} is missing required field "properties"')
        id_property = _optional_string(entry, "idProperty", where)
        if upsert and not id_property:
            raise BodyError(f'Invalid input JSON: {where} needs "idProperty" for an upsert')
        parsed.append(
            BatchInput(
                index=index,
                id=object_id,
                properties=read_properties(entry["properties"], f"{where}.properties"),
                id_property=id_property,
                trace_id=_optional_string(entry, "objectWriteTraceId", where),
            )
        )
    counts = Counter((item.id_property or "hs_object_id", item.id) for item in parsed)
    duplicates = sorted({object_id for (_, object_id), seen in counts.items() if seen > 1})
    if duplicates:
        raise BodyError(f"Duplicate IDs found in batch input: {duplicates}", code="DUPLICATE_ID")
    return parsed


@dataclass(frozen=True)
class BatchRead:
    """A batch read body: ids (or unique values of ``id_property``) and the properties wanted."""

    ids: list[str]
    properties: list[str]
    id_property: str | None = None


def _names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise BodyError(f"Invalid input JSON: {where} must be an array of property names")
    return list(value)


def parse_batch_read(body: Any) -> BatchRead:
    """A ``BatchReadInputSimplePublicObjectId`` body (at most :data:`MAX_BATCH_INPUTS` ids).

    The spec marks ``properties`` and ``propertiesWithHistory`` required; whether HubSpot enforces
    that is not documented, so they may be left out here.
    """
    ids: list[str] = []
    for _, where, entry in _input_objects(_batch_inputs(body, BATCH_READ_KEYS), frozenset({"id"})):
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            raise BodyError(f'Invalid input JSON: {where} needs "id" (a non-empty string)')
        ids.append(entry["id"])
    _names(body.get("propertiesWithHistory"), "propertiesWithHistory")
    return BatchRead(
        ids=ids,
        properties=_names(body.get("properties"), "properties"),
        id_property=_optional_string(body, "idProperty", "the request body"),
    )
