"""Checks for the run-time settings a vendor app declares.

An app declares ``settings`` as a mapping of setting name to check. A check takes the name and
the value sent (JSON from the control endpoint, or Python from a test), returns the value to store
and raises ``ValueError`` naming the setting when the value cannot be one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SettingCheck = Callable[[str, Any], Any]


def string_list(key: str, value: Any) -> tuple[str, ...]:
    """A list of strings, stored as a tuple (scopes, roles)."""
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(value)


def non_empty_string(key: str, value: Any) -> str:
    """A non-empty string (client ids, secrets, tokens)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def boolean(key: str, value: Any) -> bool:
    """A JSON boolean (``1`` or ``"yes"`` are refused)."""
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be a boolean")
    return value


def positive_number(key: str, value: Any) -> float:
    """A number above zero (seconds, windows), stored as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{key} must be a positive number")
    return float(value)


def non_negative_number(key: str, value: Any) -> float:
    """A number of zero or more (a duration that may be instant), stored as a float.

    :param key: the setting's name, for the error message.
    :param value: the value sent.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a number >= 0")
    return float(value)


def per_minute(key: str, value: Any) -> int:
    """A number above zero stored as a whole count of requests (fractions are cut off)."""
    return int(positive_number(key, value))


def positive_int(key: str, value: Any) -> int:
    """An integer above zero."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer")
    return value


def optional(check: SettingCheck) -> SettingCheck:
    """``check``, letting ``None`` (off) through."""

    def checked(key: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(key, value)
        except ValueError as exc:
            raise ValueError(f"{exc} or null") from None

    return checked
