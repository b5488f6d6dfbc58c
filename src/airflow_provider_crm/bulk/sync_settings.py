"""The incremental-sync settings an operator checks when its DAG is parsed: nothing heavier to import."""

from __future__ import annotations

import re
from datetime import timedelta

ON_STATE_ERROR = ("fail", "full_sync")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_every(value: str | float | timedelta | None) -> timedelta | None:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"``, seconds, a timedelta, or None (never)."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"full_sync_every: expected e.g. '7d', '12h', '30m' or seconds, got {value!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
