"""Value conversions several vendors share."""

from __future__ import annotations

import datetime as dt
from typing import Any


def aware_datetime(value: Any) -> dt.datetime:
    """An aware ``datetime`` from a datetime (pendulum included) or an ISO 8601 string.

    Naive values are refused: guessing a time zone silently shifts timestamps by hours.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    else:
        raise ValueError(f"expected a date-time (datetime or ISO 8601 string), got {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!s} has no time zone offset; give an aware datetime or an offset such as Z")
    return parsed


def iso_with_offset(value: Any) -> str:
    """ISO 8601 in UTC with an explicit offset, e.g. ``2026-01-02T03:04:05+00:00``."""
    return aware_datetime(value).astimezone(dt.timezone.utc).isoformat()
