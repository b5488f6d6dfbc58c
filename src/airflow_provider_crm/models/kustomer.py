"""Kustomer KObject requests and responses.

Custom attributes are typed by their name's suffix (Kustomer's own convention, see
developer.kustomer.com/docs/concepts/custom-attributes): ``Num`` number, ``At`` date-time,
``Str``/``Txt`` string of at most 1024 characters, ``Bool`` boolean, ``Url`` http(s) URI, ``Id``
a reference to another object (its id, a non-empty string); ``null`` is allowed for every type.
A key with any other suffix is refused here, before a request is sent, because Kustomer would
refuse it with a 400.

Body fields and their limits follow Kustomer's OpenAPI for ``POST /v1/klasses/{name}`` and
``PUT /v1/klasses/{name}/{id}`` (as shipped in the kustomer-client SDK, ``openapi.json``).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from airflow_provider_crm.models.body import RequestBody
from airflow_provider_crm.models.validation import EntryError
from airflow_provider_crm.models.values import iso_with_offset

MAX_TEXT_LENGTH = 1024
MAX_TITLE_LENGTH = 256
"""``title`` and ``externalId``: 1..256 characters."""
MAX_DESCRIPTION_LENGTH = 10240
MAX_ICON_LENGTH = 64
MAX_LIST_ITEMS = 20
"""``images`` and ``tags``: at most 20 distinct items each."""
MAX_TAG_LENGTH = 64
MAX_CUSTOM_ATTRIBUTES = 100
CUSTOM_SUFFIXES = ("Num", "At", "Str", "Txt", "Bool", "Url", "Id")


def _check_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _check_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters, got {len(value)}")
    return value


def _check_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {type(value).__name__}")
    return value


def _check_url(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL string, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError(f"must be an http(s) URL, got {value[:100]!r}")
    return value


def _check_reference(value: Any) -> Any:
    """An ``Id`` attribute holds the id of another object (e.g. ``"5822a4a5aa5f92110005d69a"``)."""
    if not isinstance(value, str):
        raise ValueError(f"must be an id string (a reference to another object), got {type(value).__name__}")
    if not value.strip():
        raise ValueError("must be a non-empty id string (a reference to another object)")
    return value


_CHECKS = {
    "Num": _check_number,
    "At": iso_with_offset,
    "Str": _check_text,
    "Txt": _check_text,
    "Bool": _check_bool,
    "Url": _check_url,
    "Id": _check_reference,
}


def custom_attribute_suffix(name: str) -> str | None:
    """The type suffix of a custom attribute name, or ``None`` when it has no known suffix."""
    for suffix in CUSTOM_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


_SUFFIX_CELL_TYPES = {"Num": "number", "Bool": "bool"}
"""Suffixes whose values are not strings; ``At``, ``Str``, ``Txt``, ``Url`` and ``Id`` values are."""
_FIELD_CELL_TYPES = {"tags": "list", "images": "list", "rev": "int"}
"""Body fields that are not strings: ``tags``/``images`` string arrays, ``rev`` a number (OpenAPI)."""


def cell_type(column: str) -> str | None:
    """How a text cell (a CSV column) of a KObject record is read; a type of
    :mod:`airflow_provider_crm.bulk.cells`, or ``None`` for text.

    ``custom.<name>`` by the name's suffix: ``Num`` a number, ``Bool`` a boolean, the others text
    (an ``At`` value is then checked as ISO 8601 with an offset like any other); ``tags`` and
    ``images`` lists; ``rev`` an integer. An unknown suffix is left as text for
    :func:`normalise_custom` to refuse.
    """
    parent, _, name = column.rpartition(".")
    if parent == "custom":
        suffix = custom_attribute_suffix(name)
        return _SUFFIX_CELL_TYPES.get(suffix, "str") if suffix else None
    return _FIELD_CELL_TYPES.get(column)


def normalise_custom(custom: Any) -> dict[str, Any]:
    """Check every custom attribute against its suffix; return the values as they will be sent."""
    if not isinstance(custom, dict):
        raise ValueError(f"custom must be a mapping of attribute names to values, got {type(custom).__name__}")
    if len(custom) > MAX_CUSTOM_ATTRIBUTES:
        raise ValueError(f"custom must have at most {MAX_CUSTOM_ATTRIBUTES} attributes, got {len(custom)}")
    result: dict[str, Any] = {}
    for name, value in custom.items():
        if not isinstance(name, str):
            raise ValueError(f"attribute name {name!r} must be a string")
        suffix = custom_attribute_suffix(name)
        if suffix is None:
            raise EntryError(
                f"has no known type suffix; names must end in one of {', '.join(CUSTOM_SUFFIXES)} "
                "(e.g. totalNum, shippedAt, primaryOrderId)",
                key=name,
            )
        if value is None:
            result[name] = None
            continue
        try:
            result[name] = _CHECKS[suffix](value)
        except ValueError as exc:
            raise EntryError(str(exc), key=name, value=value) from None
    return result


def _json_object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object (dict), got {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be JSON-serialisable: {exc}") from None
    return value


def _distinct(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("must not repeat an item")
    return items


ShortText = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TITLE_LENGTH)]
ObjectId = Annotated[StrictStr, AfterValidator(_check_reference)]
IsoDateTime = Annotated[str, BeforeValidator(iso_with_offset)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object)]
CustomAttributes = Annotated[dict[str, Any], BeforeValidator(normalise_custom)]
Tags = Annotated[
    list[Annotated[StrictStr, Field(min_length=1, max_length=MAX_TAG_LENGTH)]],
    Field(max_length=MAX_LIST_ITEMS),
    AfterValidator(_distinct),
]
Images = Annotated[
    list[Annotated[StrictStr, AfterValidator(_check_url)]],
    Field(max_length=MAX_LIST_ITEMS),
    AfterValidator(_distinct),
]
Revision = Annotated[StrictInt, Field(ge=0)]


class _KObjectFields(RequestBody):
    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: ShortText | None = Field(default=None, serialization_alias="externalId")
    description: Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION_LENGTH)] | None = None
    icon: Annotated[StrictStr, Field(max_length=MAX_ICON_LENGTH)] | None = None
    images: Images | None = None
    tags: Tags | None = None
    data: JsonObject | None = None
    custom: CustomAttributes | None = None
    created_at: IsoDateTime | None = Field(default=None, serialization_alias="createdAt")
    imported_at: IsoDateTime | None = Field(default=None, serialization_alias="importedAt")


class KObjectCreate(_KObjectFields):
    """Body of ``POST /v1/klasses/{name}``; the customer link travels in the path instead
    (``POST /v1/customers/{id}/klasses/{name}``), the company as ``company``."""

    title: ShortText
    company_id: ObjectId | None = Field(default=None, serialization_alias="company")


class KObjectUpdate(_KObjectFields):
    """Body of ``PUT /v1/klasses/{name}/{id}``; every field optional, only given ones sent.

    ``rev`` is the revision the caller last read: Kustomer answers 409 when the object has
    changed since (optimistic locking). ``parent`` is sent by Kustomer's own workflow action
    ``kustomer.kobject.update``; the public OpenAPI does not list it.
    """

    title: ShortText | None = None
    rev: Revision | None = None
    parent: ObjectId | None = None


class KObject(BaseModel):
    """The part of a KObject response callers use; ``raw`` keeps the whole document."""

    model_config = ConfigDict(frozen=True)

    id: str
    klass: str | None = None
    title: str | None = None
    external_id: str | None = None
    customer_id: str | None = None
    rev: int | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_response(cls, body: Any) -> KObject:
        """Parse ``{"data": {...}}``; relationships may spell ``links`` or ``link``.

        The klass is ``relationships.klass.data.id``; without it, the suffix of ``type``
        (``"kobject.order"`` in Kustomer's OpenAPI examples). A bare ``"kobject"`` is read too.
        """
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise ValueError("response has no data object")
        data = body["data"]
        attributes = data.get("attributes") or {}
        relationships = data.get("relationships") or {}
        return cls(
            id=str(data["id"]),
            klass=_related_id(relationships, "klass") or klass_from_type(data.get("type")),
            title=attributes.get("title"),
            external_id=attributes.get("externalId"),
            customer_id=_related_id(relationships, "customer"),
            rev=attributes.get("rev"),
            custom=attributes.get("custom") or {},
            raw=body,
        )


KOBJECT_TYPE = "kobject"


def klass_from_type(value: Any) -> str | None:
    """The klass named by a KObject ``type``: ``"kobject.order"`` gives ``"order"``; ``"kobject"``
    (no klass) or any other value gives ``None``."""
    prefix = KOBJECT_TYPE + "."
    if isinstance(value, str) and value.startswith(prefix) and len(value) > len(prefix):
        return value[len(prefix) :]
    return None


def _related_id(relationships: dict[str, Any], name: str) -> str | None:
    related = relationships.get(name)
    if not isinstance(related, dict):
        return None
    data = related.get("data")
    if isinstance(data, dict) and data.get("id") is not None:
        return str(data["id"])
    return None
