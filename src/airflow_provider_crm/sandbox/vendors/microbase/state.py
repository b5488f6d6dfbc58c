"""Stored customers, bus events and issued tokens of the MicroBase emulator.

Customer records are plain dicts in the service's client shape (``email``, ``firstName``,
``lastName``, ``status``, ``tags``, ``addresses``, ``id``). ``events`` lists what the service would
have published on its message bus, one entry per successful save, repeats included. Every read
returns a deep copy, so tests cannot change the store by accident.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from airflow_provider_crm.sandbox.common.store import TokenIssuingStore

_SHORT_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"
_SHORT_ID_LENGTH = 9

CREATE_EVENT = "CUSTOMERS.CREATE"
UPDATE_EVENT = "CUSTOMERS.UPDATE"


def new_short_id() -> str:
    """A 9-character id like the service's ``shortid`` ones (``HkhhuXESl``)."""
    first = secrets.choice(_SHORT_ID_ALPHABET[:62])
    return first + "".join(secrets.choice(_SHORT_ID_ALPHABET) for _ in range(_SHORT_ID_LENGTH - 1))


class MicroBaseState(TokenIssuingStore):
    """Customers by id with a unique email index, the bus events, and the OAuth tokens issued."""

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__(lock)
        self._events: list[dict[str, Any]] = []

    # Inspection helpers (public).

    def customers(self) -> list[dict[str, Any]]:
        """All stored customers, oldest first."""
        return self.records()

    def find_by_email(self, email: str) -> dict[str, Any] | None:
        """One customer by exact email, or ``None``."""
        with self._lock:
            owner = self.email_owner(email)
            return self.get(owner) if owner is not None else None

    @property
    def events(self) -> list[dict[str, Any]]:
        """Published bus events, oldest first: ``{"name", "new", "data"}`` (saved record, payload)."""
        with self._lock:
            return copy.deepcopy(self._events)

    def update_events(self) -> list[dict[str, Any]]:
        """Only the ``CUSTOMERS.UPDATE`` events."""
        return [event for event in self.events if event["name"] == UPDATE_EVENT]

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump: customers, events and the number of tokens issued."""
        with self._lock:
            return {
                "customers": self.customers(),
                "events": self.events,
                "tokens_issued": self.tokens_issued,
            }

    # Mutations (used by the emulator; records are already validated).

    def email_owner(self, email: str) -> str | None:
        """Id of the customer holding an email."""
        with self._lock:
            return next((cid for cid, record in self._records.items() if record["email"] == email), None)

    def save(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Insert or overwrite a customer (keyed by ``record["id"]``) and return it."""
        stored = copy.deepcopy(dict(record))
        with self._lock:
            self._records[stored["id"]] = stored
            return copy.deepcopy(stored)

    def publish(self, name: str, record: Mapping[str, Any], data: Any) -> None:
        """Record a bus event."""
        with self._lock:
            self._events.append({"name": name, "new": copy.deepcopy(dict(record)), "data": copy.deepcopy(data)})

    def clear(self) -> None:
        """Forget customers, events and tokens."""
        with self._lock:
            super().clear()
            self._events.clear()
