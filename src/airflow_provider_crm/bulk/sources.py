"""Records to write: a list from XCom, or a JSON Lines / CSV file read as a stream.

CSV columns with dots build nested objects (``custom.totalNum`` → ``{"custom": {"totalNum": ...}}``);
empty cells are left out. A CSV row comes as a :class:`TextRecord`, which tells the writer its
cells are text still to be converted (see :mod:`~airflow_provider_crm.bulk.cells`); records from
JSON keep the types they have. Dead-letter files written by the bulk operators are valid input:
their ``_crm_error`` field is dropped when read back.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_provider_crm.bulk.files import open_path, suffix_of

ERROR_FIELD = "_crm_error"


class BadRecord:
    """An input line that is not a record at all; it is rejected, not fatal."""

    def __init__(self, reason: str, raw: str) -> None:
        self.reason = reason
        self.raw = raw[:500]


def _record(value: Any, where: str) -> dict[str, Any] | BadRecord:
    if not isinstance(value, Mapping):
        return BadRecord(f"{where}: expected a JSON object, got {type(value).__name__}", json.dumps(value)[:500])
    record = dict(value)
    record.pop(ERROR_FIELD, None)
    return record


def _json_lines(path: str | os.PathLike[str]) -> Iterator[dict[str, Any] | BadRecord]:
    with open_path(path, "r") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield _record(json.loads(line), f"line {number}")
            except json.JSONDecodeError as exc:
                yield BadRecord(f"line {number}: invalid JSON ({exc.msg})", line)


class TextRecord(dict[str, Any]):
    """A record from an all-string source (CSV): every value is text as read, until converted.

    ``line`` is the file line the row starts on (for messages); ``typed`` turns true once the
    cells were converted to the types the vendor wants.
    """

    __slots__ = ("line", "typed")

    def __init__(self, values: Mapping[str, Any] | None = None, *, line: int | None = None) -> None:
        super().__init__(values or {})
        self.line = line
        self.typed = False


def _checked_header(header: list[str]) -> list[str]:
    """Refuse columns that would overwrite each other (``a`` twice, or ``a`` next to ``a.b``)."""
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise ValueError(f"CSV header: column {column!r} appears twice")
        seen.add(column)
    for column in header:
        parts = column.split(".")
        for end in range(1, len(parts)):
            parent = ".".join(parts[:end])
            if parent in seen:
                raise ValueError(f"CSV header: column {parent!r} and column {column!r} would both set {parent!r}")
    return header


def _nested(header: list[str], row: list[str], line: int) -> TextRecord | BadRecord:
    if any(row[len(header) :]):
        return BadRecord(f"line {line}: {len(row)} cells but {len(header)} columns (an unquoted comma?)", ",".join(row))
    record = TextRecord(line=line)
    for column, cell in zip(header, row[: len(header)], strict=False):  # missing cells are left out
        if cell == "":
            continue
        *parents, leaf = column.split(".")
        target: dict[str, Any] = record
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = cell
    return record


def _csv(path: str | os.PathLike[str]) -> Iterator[dict[str, Any] | BadRecord]:
    with open_path(path, "r") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        if header:  # spreadsheet exports often start with a byte-order mark
            header[0] = header[0].removeprefix("\ufeff")
        header = _checked_header(header)
        while True:
            line = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if row:  # a blank line is no record
                yield _nested(header, row, line)


def _json_array(path: str | os.PathLike[str]) -> Iterator[dict[str, Any] | BadRecord]:
    with open_path(path, "r") as handle:
        items = json.load(handle)
    if not isinstance(items, list):
        yield BadRecord("the file's top level is not a JSON array", str(type(items).__name__))
        return
    for number, item in enumerate(items, start=1):
        yield _record(item, f"item {number}")


def iter_records(
    records: Iterable[Any] | str | None = None, source: str | os.PathLike[str] | None = None
) -> Iterator[dict[str, Any] | BadRecord]:
    """Yield records one at a time, from ``records`` (list, or JSON text) or the file ``source``."""
    if (records is None) == (source is None):
        raise ValueError("give exactly one of records (a list, e.g. from XCom) or source (a file path)")
    if source is not None:
        readers = {".jsonl": _json_lines, ".ndjson": _json_lines, ".csv": _csv, ".json": _json_array}
        reader = readers.get(suffix_of(source))
        if reader is None:
            raise ValueError(f"source {source!s}: use a .jsonl, .ndjson, .csv or .json file")
        yield from reader(source)
        return
    if isinstance(records, str):
        records = json.loads(records)
    if isinstance(records, Mapping) or not isinstance(records, Iterable):
        raise ValueError("records must be a list of objects")
    for number, item in enumerate(records, start=1):
        yield _record(item, f"record {number}")
