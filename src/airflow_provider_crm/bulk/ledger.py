"""The per-record ledger and the dead-letter file, both JSON Lines, written as results arrive."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_crm.bulk.files import open_path
from airflow_provider_crm.bulk.sources import ERROR_FIELD

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
REJECTED = "rejected"
WOULD_CREATE = "would_create"
WOULD_UPDATE = "would_update"
INVALID = "invalid"
NOT_ATTEMPTED = "not_attempted"
WRITTEN = frozenset({CREATED, UPDATED, UNCHANGED})
"""Actions of a record the vendor holds after the run."""

OK = "ok"
ERROR = "error"
RETRY = "retry"
SKIPPED = "skipped"
"""Ledger ``status`` values: ``ok`` written (or previewed), ``error`` refused for good, ``retry`` refused for a
reason that can pass (a task retry sends it again), ``skipped`` never settled (the run stopped first)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one input record."""

    index: int
    key: str
    action: str
    remote_id: str | None = None
    status: str = OK
    error_code: str | None = None
    error_message: str | None = None

    @property
    def rejected(self) -> bool:
        return self.action in (REJECTED, INVALID)

    def as_line(self) -> dict[str, Any]:
        """The ledger line: every field by name (``dataclasses.asdict`` without its deep copies, a hot path)."""
        return {
            "index": self.index,
            "key": self.key,
            "action": self.action,
            "remote_id": self.remote_id,
            "status": self.status,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }

    @property
    def retry_later(self) -> bool:
        """Refused for a reason that can pass (5xx, timeout, rate limit, lost connection): not done."""
        return self.rejected and self.status == RETRY


class JsonLinesWriter:
    """Thread-safe append of one JSON object per line; a no-op when no path is given."""

    def __init__(self, path: str | os.PathLike[str] | None, *, append: bool = False) -> None:
        self.path = None if path is None else str(path)
        self._lock = threading.Lock()
        self._handle: IO[Any] | None = None if path is None else open_path(path, "a" if append else "w")
        self.lines = 0

    def write(self, item: dict[str, Any]) -> None:
        if self._handle is None:
            return
        line = json.dumps(item, default=str, separators=(",", ":")) + "\n"
        with self._lock:
            self._handle.write(line)
            self.lines += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Ledger:
    """Writes every outcome to the ledger and every rejected record, whole, to the dead letter."""

    def __init__(self, ledger: JsonLinesWriter, dead_letter: JsonLinesWriter) -> None:
        self.ledger = ledger
        self.dead_letter = dead_letter

    def record(self, outcome: Outcome, record: Any) -> None:
        self.ledger.write(outcome.as_line())
        if outcome.action == REJECTED and isinstance(record, dict):
            error = {
                "key": outcome.key,
                "index": outcome.index,
                "code": outcome.error_code,
                "message": outcome.error_message,
                "retry": outcome.retry_later,
            }
            self.dead_letter.write({**record, ERROR_FIELD: error})

    def close(self) -> None:
        self.ledger.close()
        self.dead_letter.close()
