"""Stored customers of the Kaiten emulator, with the lookups tests need.

Records are plain dicts in the vendor's Customer shape, keyed by slug (unique per organization).
``domain`` is kept as ``None`` when unset (the HTTP answer leaves it out). Every read returns a
deep copy, so tests cannot change the store by accident.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_crm.sandbox.common.store import RecordStore


def timestamp() -> str:
    """Current UTC time with microseconds, so two quick writes get different ``updatedAt``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class KaitenState(RecordStore):
    """Customers by slug, in creation order; each has a sequence number for cursor paging."""

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__(lock)
        self._sequence: dict[str, int] = {}
        self._counter = itertools.count(1)

    # Inspection helpers (public).

    def customers(self) -> list[dict[str, Any]]:
        """All stored customers, oldest first."""
        return self.records()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump of the customers."""
        return {"customers": self.customers()}

    # Mutations (used by the emulator; bodies are already validated).

    def page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` customers created after sequence number ``after``, and the last number
        returned when more follow (else ``None``)."""
        with self._lock:
            rest = [slug for slug in self._records if self._sequence[slug] > after]
            chunk = rest[:limit]
            more = len(rest) > limit
            records = [copy.deepcopy(self._records[slug]) for slug in chunk]
            return records, (self._sequence[chunk[-1]] if more and chunk else None)

    def create(self, fields: Mapping[str, Any], slug: str, actor: Mapping[str, str]) -> dict[str, Any]:
        """Store a new customer under ``slug`` (the caller checked it is free) and return it."""
        now = timestamp()
        record: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": fields["name"],
            "slug": slug,
            "externalCustomerId": fields.get("externalCustomerId"),
            "domain": fields.get("domain"),
            "integrations": copy.deepcopy(dict(fields.get("integrations") or {})),
            "createdAt": now,
            "createdBy": dict(actor),
            "updatedAt": now,
            "updatedBy": dict(actor),
        }
        with self._lock:
            self._records[slug] = record
            self._sequence[slug] = next(self._counter)
            return copy.deepcopy(record)

    def replace(self, slug: str, fields: Mapping[str, Any], actor: Mapping[str, str]) -> dict[str, Any] | None:
        """Full replacement: ``externalCustomerId`` and ``domain`` are cleared when omitted."""
        with self._lock:
            record = self._records.get(slug)
            if record is None:
                return None
            record["name"] = fields["name"]
            record["externalCustomerId"] = fields.get("externalCustomerId")
            record["domain"] = fields.get("domain")
            record["updatedAt"] = timestamp()
            record["updatedBy"] = dict(actor)
            return copy.deepcopy(record)

    def delete(self, slug: str) -> bool:
        """Remove a customer; ``False`` if unknown."""
        with self._lock:
            self._sequence.pop(slug, None)
            return self._records.pop(slug, None) is not None

    def clear(self) -> None:
        """Forget every customer."""
        with self._lock:
            super().clear()
            self._sequence.clear()
