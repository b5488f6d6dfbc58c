"""Kustomer KObject request-body rules, as documented for create and update.

Each problem is reported with the attribute it concerns, so a 400 names the field. Facts come
from Kustomer's API reference (create/update KObject) and its OpenAPI ("Core Resources", as
shipped in LarisLab/kustomer-client ``openapi.json``): field lengths, ``images``/``tags`` at most
20 distinct items, ``custom`` at most 100 attributes, ``additionalProperties: false``. The
``Id`` suffix (a reference to another object) comes from
developer.kustomer.com/docs/concepts/custom-attributes. Where the reference is silent the rule is
an assumption and says so: the tag pattern of the OpenAPI is not enforced, and an ``Id`` value is
not checked against the referenced object (Kustomer validates it against the attribute's
configured target type, which this emulator does not model).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

CREATE_FIELDS = frozenset(
    {
        "title",
        "customer",
        "company",
        "externalId",
        "description",
        "images",
        "icon",
        "data",
        "custom",
        "tags",
        "createdAt",
        "importedAt",
    }
)
# The update type in the vendor SDK has no customer/company but adds rev; Kustomer's own workflow
# action kustomer.kobject.update also sends parent (the public OpenAPI does not list it).
UPDATE_FIELDS = (CREATE_FIELDS - {"customer", "company"}) | {"rev", "parent"}

MAX_TEXT_LENGTH = 1024
MAX_TITLE_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 10240
MAX_ICON_LENGTH = 64
MAX_LIST_ITEMS = 20
MAX_TAG_LENGTH = 64
MAX_CUSTOM_ATTRIBUTES = 100

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")
_FRACTION = re.compile(r"\.(\d+)")


@dataclass(frozen=True)
class FieldError:
    """One invalid attribute, located by its key path, e.g. ``("custom", "totalNum")``."""

    path: tuple[str, ...]
    message: str

    @property
    def attribute(self) -> str:
        """Dotted name, e.g. ``custom.totalNum``."""
        return ".".join(self.path)

    @property
    def pointer(self) -> str:
        """JSON pointer, e.g. ``/custom/totalNum``."""
        return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in self.path)


def is_datetime_with_offset(value: Any) -> bool:
    """ISO 8601 date-time with ``T`` and an explicit offset or ``Z`` (RFC 3339 style)."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return False
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    text = _FRACTION.sub(lambda found: "." + (found.group(1) + "000000")[:6], text)
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_http_url(value: Any) -> bool:
    """An absolute http(s) URI with a host and no whitespace."""
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


def is_number(value: Any) -> bool:
    """A finite JSON number (booleans are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH


def is_object_id(value: Any) -> bool:
    """A reference to another object: a non-empty id string."""
    return isinstance(value, str) and bool(value.strip())


_SUFFIX_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("Num", is_number, "a number"),
    ("At", is_datetime_with_offset, "an ISO 8601 date-time with a UTC offset or Z"),
    ("Str", _is_text, f"a string of at most {MAX_TEXT_LENGTH} characters"),
    ("Txt", _is_text, f"a string of at most {MAX_TEXT_LENGTH} characters"),
    ("Bool", lambda value: isinstance(value, bool), "a boolean"),
    ("Url", is_http_url, "an http or https URI"),
    ("Id", is_object_id, "a non-empty id string (a reference to another object)"),
)
CUSTOM_SUFFIXES = tuple(suffix for suffix, _, _ in _SUFFIX_RULES)


def validate_custom(custom: Any) -> list[FieldError]:
    """Check custom attributes: the name suffix sets the type; ``null`` is always allowed."""
    if not isinstance(custom, dict):
        return [FieldError(("custom",), "custom must be an object")]
    if len(custom) > MAX_CUSTOM_ATTRIBUTES:
        return [FieldError(("custom",), f"custom must have at most {MAX_CUSTOM_ATTRIBUTES} attributes")]
    errors: list[FieldError] = []
    for name, value in custom.items():
        attribute = ("custom", name)
        rule = next(
            (rule for rule in _SUFFIX_RULES if name.endswith(rule[0]) and len(name) > len(rule[0])),
            None,
        )
        if rule is None:
            errors.append(
                FieldError(
                    attribute,
                    f"custom attribute {name!r} must end with one of {', '.join(CUSTOM_SUFFIXES)}",
                )
            )
        elif value is not None and not rule[1](value):
            errors.append(FieldError(attribute, f"custom attribute {name!r} must be {rule[2]} or null"))
    return errors


def _check_string_list(name: str, value: Any, item_ok: Callable[[str], bool], item_rule: str) -> list[FieldError]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return [FieldError((name,), f"{name} must be an array of strings")]
    if len(value) > MAX_LIST_ITEMS or len(set(value)) != len(value):
        return [FieldError((name,), f"{name} must hold at most {MAX_LIST_ITEMS} distinct items")]
    return [
        FieldError((name, str(index)), f"{name}[{index}] must be {item_rule}")
        for index, item in enumerate(value)
        if not item_ok(item)
    ]


def _is_tag(value: str) -> bool:
    return 1 <= len(value) <= MAX_TAG_LENGTH


def _check_fields(body: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, value in body.items():
        if name == "title":
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_TITLE_LENGTH:
                errors.append(
                    FieldError((name,), f"title must be a non-empty string of at most {MAX_TITLE_LENGTH} characters")
                )
        elif name in {"description", "icon"}:
            limit = MAX_DESCRIPTION_LENGTH if name == "description" else MAX_ICON_LENGTH
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(FieldError((name,), f"{name} must be a string of at most {limit} characters or null"))
        elif name in {"customer", "company", "parent"}:
            if not is_object_id(value):
                errors.append(FieldError((name,), f"{name} must be a non-empty id string"))
        elif name == "externalId":
            if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_TITLE_LENGTH):
                errors.append(
                    FieldError((name,), f"externalId must be a string of 1 to {MAX_TITLE_LENGTH} characters or null")
                )
        elif name == "images":
            errors.extend(_check_string_list(name, value, is_http_url, "an http or https URL"))
        elif name == "tags":
            errors.extend(_check_string_list(name, value, _is_tag, f"a string of 1 to {MAX_TAG_LENGTH} characters"))
        elif name == "data":
            if value is not None and not isinstance(value, dict):
                errors.append(FieldError((name,), "data must be an object or null"))
        elif name == "custom":
            errors.extend(validate_custom(value))
        elif name in {"createdAt", "importedAt"}:
            if value is not None and not is_datetime_with_offset(value):
                errors.append(FieldError((name,), f"{name} must be an ISO 8601 date-time with a UTC offset or Z"))
        elif name == "rev" and not is_number(value):
            errors.append(FieldError((name,), "rev must be a number"))
    return errors


def _check_unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> list[FieldError]:
    return [FieldError((name,), f"{name!r} is not an allowed field") for name in body if name not in allowed]


def validate_create(body: Mapping[str, Any]) -> list[FieldError]:
    """Problems with a create body (``title`` required)."""
    errors = _check_unknown(body, CREATE_FIELDS)
    if "title" not in body:
        errors.append(FieldError(("title",), "title is required"))
    known = {name: value for name, value in body.items() if name in CREATE_FIELDS}
    return errors + _check_fields(known)


def validate_update(body: Mapping[str, Any]) -> list[FieldError]:
    """Problems with an update body (every field optional)."""
    errors = _check_unknown(body, UPDATE_FIELDS)
    known = {name: value for name, value in body.items() if name in UPDATE_FIELDS}
    return errors + _check_fields(known)
