"""The HubSpot order property catalogue and the rules for property values.

HubSpot sends and stores every property value as a string; the property's type decides which
strings are valid. ``""`` is always valid and clears the value. Facts come from HubSpot's docs
(dates are epoch milliseconds at midnight UTC, multi-checkbox options are ``;``-joined,
read-only and unknown properties are refused); error codes and wording follow what HubSpot
answers (``PROPERTY_DOESNT_EXIST``, ``INVALID_OPTION``, ``INVALID_DATE``, ``READ_ONLY_VALUE``).
``INVALID_DECIMAL`` and ``INVALID_DATETIME`` are assumptions.

Numbers hold only ASCII digits, an optional leading ``-`` and at most one ``.``; HubSpot refuses
commas, spaces and anything else with a 400
(https://developers.hubspot.com/changelog/upcoming-api-number-value-changes), so exponents,
``+`` and surrounding whitespace are refused here too. Dates and datetimes are epoch
milliseconds (https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis);
the ISO 8601 forms HubSpot's newer FAQ also lists are not accepted here. HubSpot described
whitespace around non-string values as accepted when it announced, then cancelled, refusing it:
https://developers.hubspot.com/changelog/breaking-change-enhanced-validations-for-non-string-properties-in-hubspots-crmobject-apis
The emulator refuses it (``"12\\n"`` is no date), so a client never relies on that leniency.
Patterns are applied with ``fullmatch``: with ``match``, ``$`` also matches before a final newline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

PROPERTY_TYPES = frozenset({"string", "number", "date", "datetime", "enumeration", "bool"})

DAY_MS = 86_400_000

_EPOCH_MS = re.compile(r"-?[0-9]{1,15}")
_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")


@dataclass(frozen=True)
class PropertyDef:
    """One order property: its HubSpot ``type``, options (enumerations) and flags.

    ``multiple`` marks a multi-checkbox enumeration (``;``-joined options); ``unique`` marks a
    property usable as ``idProperty``; ``read_only`` properties are set by HubSpot only.
    """

    name: str
    type: str
    options: tuple[str, ...] = ()
    multiple: bool = False
    unique: bool = False
    read_only: bool = False

    def __post_init__(self) -> None:
        if self.type not in PROPERTY_TYPES:
            raise ValueError(f"unknown property type {self.type!r}; expected one of {sorted(PROPERTY_TYPES)}")
        if self.type == "enumeration" and not self.options:
            raise ValueError(f"enumeration property {self.name!r} needs options")

    @property
    def allowed(self) -> tuple[str, ...]:
        """The valid option values (``true``/``false`` for booleans)."""
        return ("true", "false") if self.type == "bool" else self.options

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready definition, the inverse of :func:`property_from_dict`."""
        return {
            "type": self.type,
            "options": list(self.options),
            "multiple": self.multiple,
            "unique": self.unique,
            "read_only": self.read_only,
        }


OBJECT_ID = "hs_object_id"
CREATE_DATE = "hs_createdate"
LAST_MODIFIED = "hs_lastmodifieddate"

PROPERTIES: dict[str, PropertyDef] = {
    definition.name: definition
    for definition in (
        PropertyDef("hs_order_name", "string"),
        PropertyDef("hs_external_order_id", "string", unique=True),
        PropertyDef("hs_currency_code", "enumeration", options=("USD", "EUR", "GBP")),
        PropertyDef("hs_total_price", "number"),
        PropertyDef("hs_fulfillment_status", "string"),
        PropertyDef("hs_order_date", "date"),
        PropertyDef("hs_shipped_at", "datetime"),
        PropertyDef("hs_is_gift", "bool"),
        PropertyDef("hs_tags", "enumeration", options=("vip", "b2b", "gift", "rush", "kustomer"), multiple=True),
        PropertyDef("kustomer_kobject_id", "string"),
        PropertyDef(OBJECT_ID, "number", unique=True, read_only=True),
        PropertyDef(CREATE_DATE, "datetime", read_only=True),
        PropertyDef(LAST_MODIFIED, "datetime", read_only=True),
    )
}
"""The default catalogue; apps extend their own copy (see ``HubSpotApp.add_property``)."""


@dataclass(frozen=True)
class PropertyError:
    """One invalid property value, in HubSpot's terms (``code`` is e.g. ``INVALID_OPTION``)."""

    name: str
    code: str
    message: str

    def detail(self) -> dict[str, Any]:
        """The ``ErrorDetail`` of an error body."""
        return {"message": self.message, "code": self.code, "context": {"propertyName": [self.name]}}

    def validation_result(self) -> dict[str, Any]:
        """The legacy ``validationResults`` entry HubSpot embeds in its message."""
        return {
            "isValid": False,
            "message": self.message,
            "error": self.code,
            "name": self.name,
            "localizedErrorMessage": self.message,
        }


def property_from_dict(name: str, data: Any) -> PropertyDef:
    """Build a definition from ``{"type": "enumeration", "options": [...], ...}``; raises ``ValueError``."""
    if not isinstance(name, str) or not name:
        raise ValueError("property names must be non-empty strings")
    if not isinstance(data, Mapping):
        raise ValueError(f"definition of {name!r} must be an object")
    unknown = sorted(set(data) - {"type", "options", "multiple", "unique", "read_only"})
    if unknown:
        raise ValueError(f"unknown key(s) in definition of {name!r}: {', '.join(unknown)}")
    options = data.get("options", [])
    if not isinstance(options, list | tuple) or not all(isinstance(option, str) for option in options):
        raise ValueError(f"options of {name!r} must be a list of strings")
    flags = {key: data.get(key, False) for key in ("multiple", "unique", "read_only")}
    if not all(isinstance(flag, bool) for flag in flags.values()):
        raise ValueError(f"multiple, unique and read_only of {name!r} must be booleans")
    return PropertyDef(name, str(data.get("type")), tuple(options), **flags)


def _clock_time(millis: int) -> str:
    moment = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    return f"{moment:%H:%M:%S}.{millis % 1000:03d}"


def check_value(definition: PropertyDef, value: str) -> PropertyError | None:
    """Whether a string value suits the property (``""`` always does: it clears)."""
    name = definition.name
    if definition.read_only:
        return PropertyError(name, "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set.")
    if value == "" or definition.type == "string":
        return None
    if definition.type == "number":
        valid = _DECIMAL.fullmatch(value) is not None
        return None if valid else PropertyError(name, "INVALID_DECIMAL", f"{value} was not a valid number.")
    if definition.type in ("date", "datetime"):
        if _EPOCH_MS.fullmatch(value) is None:
            code = "INVALID_DATE" if definition.type == "date" else "INVALID_DATETIME"
            return PropertyError(
                name,
                code,
                f"{value} is not a valid {definition.type}: expected a Unix timestamp in milliseconds",
            )
        millis = int(value)
        if definition.type == "date" and millis % DAY_MS:
            return PropertyError(name, "INVALID_DATE", f"{value} is at {_clock_time(millis)} UTC, not midnight!")
        return None
    chosen = [part for part in value.split(";") if part] if definition.multiple else [value]
    bad = [part for part in chosen if part not in definition.allowed]
    if bad or not chosen:
        shown = ";".join(bad) or value
        options = ", ".join(definition.allowed)
        return PropertyError(name, "INVALID_OPTION", f"{shown} was not one of the allowed options: [{options}]")
    return None


def check_properties(catalogue: Mapping[str, PropertyDef], properties: Mapping[str, str]) -> list[PropertyError]:
    """All problems with a ``properties`` map whose values are already known to be strings."""
    errors: list[PropertyError] = []
    for name, value in properties.items():
        definition = catalogue.get(name)
        if definition is None:
            errors.append(PropertyError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            continue
        error = check_value(definition, value)
        if error is not None:
            errors.append(error)
    return errors
