"""Compare two JSON documents by shape: the keys and JSON types a client reads, not the values."""

from __future__ import annotations

from typing import Any


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def shape_mismatches(
    expected: Any, actual: Any, where: str = "$", *, ignore: frozenset[str] = frozenset()
) -> list[str]:
    """Where ``actual`` lacks a key of ``expected`` or holds another JSON type.

    Extra keys in ``actual`` are allowed (vendors add fields). A ``null`` in ``expected`` matches
    any value (the field is nullable); arrays compare each element of ``actual`` with the first
    element of ``expected``. ``ignore`` names JSON paths (``$.a.b``) to skip.
    """
    if where in ignore or expected is None:
        return []
    if json_type(expected) != json_type(actual):
        return [f"{where}: expected {json_type(expected)}, got {json_type(actual)}"]
    problems: list[str] = []
    if isinstance(expected, dict):
        for key, value in expected.items():
            path = f"{where}.{key}"
            if path in ignore:
                continue
            if key not in actual:
                problems.append(f"{path}: missing")
            else:
                problems.extend(shape_mismatches(value, actual[key], path, ignore=ignore))
    elif isinstance(expected, list) and expected:
        for index, item in enumerate(actual):
            problems.extend(shape_mismatches(expected[0], item, f"{where}[{index}]", ignore=ignore))
    return problems
