"""Typed values from text cells: what a CSV column holds, by the vendor's types and the operator's overrides.

A CSV cell is always text, but vendors want numbers, booleans and lists. Records read from an
all-string source arrive as :class:`~airflow_provider_crm.bulk.sources.TextRecord`; just before a
writer checks such a record, each cell is converted by its column's type: the operator's
``column_types`` override first, else the writer's ``cell_type(column)`` (the vendor's own type
information, kept next to its model, e.g. Kustomer's attribute suffixes), else it stays a string.
Records from JSON, JSON Lines or XCom already carry types and are never converted.

Types (the names ``column_types`` accepts):

- ``str``: the cell as it is.
- ``int``: a whole number: ``42``, ``-7``.
- ``float``: a decimal number: ``3.5``, ``-0.25``, ``1e3``, ``42`` (sent as ``42.0``).
- ``number``: ``int`` when the text is a whole number, else ``float``. Numbers use a dot for
  decimals and no thousands separators; ``NaN`` and ``inf`` are refused.
- ``bool``: ``true``/``false``, ``yes``/``no``, ``1``/``0``, in any case.
- ``list``: items separated by ``|`` (:data:`LIST_SEPARATOR`), each stripped of surrounding
  spaces: ``vip | wholesale`` is ``["vip", "wholesale"]``; an empty item is refused.
- ``json``: JSON text, e.g. ``{"sku": "A-1"}`` for a whole ``data`` object.

An empty cell is never converted: it is left out of the record, so the field keeps its value.
A cell that does not convert rejects its record (``validation_error``, naming the line, the
column and the value); the other records go on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_crm.bulk.sources import TextRecord
from airflow_provider_crm.errors import CrmValidationError

if TYPE_CHECKING:
    from airflow_provider_crm.bulk.ledger import Outcome
    from airflow_provider_crm.bulk.runner import Item, RecordWriter

CELL_TYPES = ("str", "int", "float", "number", "bool", "list", "json")
LIST_SEPARATOR = "|"
"""``|`` rather than ``,``: a comma is common inside CSV text and legal inside URLs (``images``)."""
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})

CellType = Callable[[str], str | None]
"""A vendor's type information: the type name for a column (``"custom.totalNum"``), or ``None``."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _int(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise ValueError("is not a whole number (e.g. 42 or -7)")
    return int(text)


def _float(text: str) -> float:
    if not _DECIMAL.fullmatch(text.strip()):
        raise ValueError("is not a number (e.g. 42 or 3.5; a dot for decimals, no thousands separators)")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("is too large to be a finite number")
    return value


def _number(text: str) -> int | float:
    return int(text) if _INTEGER.fullmatch(text.strip()) else _float(text)


def _bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("is not a boolean (true/false, yes/no or 1/0)")


def _list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(LIST_SEPARATOR)]
    if not all(items):
        raise ValueError(f"has an empty item (items are separated by {LIST_SEPARATOR!r})")
    return items


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ValueError(f"is not JSON ({exc})") from None


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": _int,
    "float": _float,
    "number": _number,
    "bool": _bool,
    "list": _list,
    "json": _json,
}


def convert_cell(text: str, cell_type: str) -> Any:
    """The value of one cell; raises ``ValueError`` saying what the text is not."""
    return _CONVERTERS[cell_type](text)


def check_column_types(column_types: Mapping[str, str] | None) -> dict[str, str]:
    """The operator's overrides, checked when the DAG is parsed: column name → one of :data:`CELL_TYPES`."""
    if column_types is None:
        return {}
    if not isinstance(column_types, Mapping):
        raise ValueError(f"column_types must map column names to type names, got {type(column_types).__name__}")
    for column, name in column_types.items():
        if not isinstance(column, str) or not column:
            raise ValueError(f"column_types: column {column!r} must be a non-empty column name")
        if name not in CELL_TYPES:
            raise ValueError(f"column_types[{column!r}]: unknown type {name!r}; use one of {', '.join(CELL_TYPES)}")
    return dict(column_types)


class CellTypes:
    """Converts the cells of text records: the override for a column wins over the vendor's type."""

    def __init__(self, vendor: CellType | None = None, overrides: Mapping[str, str] | None = None) -> None:
        self.vendor = vendor
        self.overrides = check_column_types(overrides)

    def type_of(self, column: str) -> str | None:
        if column in self.overrides:
            return self.overrides[column]
        name = self.vendor(column) if self.vendor else None
        if name is not None and name not in _CONVERTERS:
            raise ValueError(f"unknown cell type {name!r} for column {column!r}")  # a vendor table is wrong
        return name

    def convert(self, record: TextRecord) -> None:
        """Convert every cell in place, or none: a bad cell raises :class:`CrmValidationError`.

        In place, so that the ledger's dead-letter file holds the values as they were sent (and
        replays as JSON Lines); a refused record keeps its text as read.
        """
        if record.typed:
            return
        converted = self._converted(record, "", record.line)
        record.clear()
        record.update(converted)
        record.typed = True

    def _converted(self, values: Mapping[str, Any], prefix: str, line: int | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in values.items():
            column = f"{prefix}{name}"
            if isinstance(value, Mapping):
                result[name] = self._converted(value, f"{column}.", line)
                continue
            cell_type = self.type_of(column) if isinstance(value, str) else None
            if cell_type is None:
                result[name] = value
                continue
            try:
                result[name] = convert_cell(value, cell_type)
            except ValueError as exc:
                where = f"line {line}, column {column}" if line is not None else f"column {column}"
                shown = value if len(value) <= 100 else value[:100] + "…"
                raise CrmValidationError(f"{where} ({cell_type}): {shown!r} {exc}", field=column) from None
        return result


class TypedCells:
    """A record writer that first converts text records by its cell types, then lets the writer check them.

    Everything else (keys, writes, previews, and any extra method the runner asks for) is the
    wrapped writer's.
    """

    def __init__(self, writer: RecordWriter, overrides: Mapping[str, str] | None = None) -> None:
        self.writer = writer
        self.batch_size = writer.batch_size
        self.cells = CellTypes(getattr(writer, "cell_type", None), overrides)

    def key(self, record: dict[str, Any], index: int) -> str:
        return self.writer.key(record, index)

    def prepare(self, record: dict[str, Any]) -> Any:
        if isinstance(record, TextRecord):
            self.cells.convert(record)
        return self.writer.prepare(record)

    def write(self, items: list[Item]) -> list[Outcome]:
        return self.writer.write(items)

    def preview(self, items: list[Item]) -> list[Outcome]:
        return self.writer.preview(items)

    def __getattr__(self, name: str) -> Any:
        if name == "writer":  # not set yet (e.g. while copying): don't recurse
            raise AttributeError(name)
        return getattr(self.writer, name)


def typed_cells(writer: RecordWriter, overrides: Mapping[str, str] | None = None) -> RecordWriter:
    """``writer``, converting text records (CSV) by its vendor's cell types and ``overrides`` first."""
    return TypedCells(writer, overrides)
