"""MicroBase customer-service rules, in the order the service applies them.

First the operation's JSON schema checks the merged payload; extra properties are allowed. The
framework validates with Ajv 4 in its default mode, which stops at the first problem, and reports it
as ``payload<dataPath>: <message>`` (its own test expects ``payload: should have required property
'lastName'``: dasanor/microbase:src/test/testInMiddlewares.js, src/modules/utils/index.js). Then
the handler runs its own checks (``isemail`` on a new email). Last the Mongoose model validates on
save (``status`` enum) and the unique email index refuses duplicates. Fields are merged
JavaScript-style: a sent value replaces the stored one only if it is truthy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("ACTIVE", "INACTIVE")


@dataclass(frozen=True)
class Schema:
    """An operation's JSON schema: required names and property types (``array`` = of strings)."""

    required: tuple[str, ...]
    properties: Mapping[str, str]


# Property order matters: Ajv reports the first failing property in schema order
# (micro-customer-service src/operations/schemas/updateCustomerSchema.js, createCustomerSchema.js).
_NAMES = {"firstName": "string", "lastName": "string", "tags": "array", "status": "string"}
UPDATE_SCHEMA = Schema(("id",), {"id": "string", "email": "string", **_NAMES})
# The vendor also requires password, firstName and lastName; the emulator only needs an email.
CREATE_SCHEMA = Schema(("email",), {"email": "string", "password": "string", **_NAMES})
INFO_SCHEMA = Schema(("id",), {"id": "string"})

_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: ``""``, ``0``, ``NaN``, ``null`` and ``false`` are falsy; ``[]`` is not."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    return True


def js_number(value: Any) -> float:
    """JavaScript's unary ``+``: numeric strings become numbers, anything else ``NaN``."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(text)
        except ValueError:
            return math.nan
    return math.nan


def schema_errors(payload: Any, schema: Schema) -> list[str]:
    """The first problem the operation's JSON schema finds, as ``[payload<path>: <message>]``.

    Ajv checks the type of the payload, then the required names, then each property in schema
    order, and stops at the first failure; so there is at most one message.
    """
    if not isinstance(payload, dict):
        return ["payload: should be object"]
    for name in schema.required:
        if name not in payload:
            return [f"payload: should have required property '{name}'"]
    for name, kind in schema.properties.items():
        if name not in payload:
            continue
        value = payload[name]
        if kind == "string" and not isinstance(value, str):
            return [f"payload.{name}: should be string"]
        if kind == "array":
            if not isinstance(value, list):
                return [f"payload.{name}: should be array"]
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    return [f"payload.{name}[{index}]: should be string"]
    return []


def model_errors(record: Mapping[str, Any]) -> list[str]:
    """Problems the Mongoose model reports on save, as ``<path>: <message>`` strings."""
    status = record.get("status")
    if status not in STATUSES:
        return [f"status: `{status}` is not a valid enum value for path `status`."]
    return []


def is_email(value: str) -> bool:
    """A pragmatic ``local@domain`` check in the spirit of ``isemail`` (no DNS lookup)."""
    local, separator, domain = value.rpartition("@")
    if not separator or not local or not domain or len(value) > 254 or len(local) > 64:
        return False
    if _LOCAL_PART.fullmatch(local) is None:
        return False
    return all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split("."))
