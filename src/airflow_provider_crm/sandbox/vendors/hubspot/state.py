"""Stored HubSpot orders and issued OAuth access tokens, with the lookups tests need.

An order is a plain dict shaped like ``SimplePublicObject`` (``id``, ``properties``,
``createdAt``, ``updatedAt``, ``archived``); ``properties`` holds only set values, plus the
read-only ``hs_object_id``, ``hs_createdate`` and ``hs_lastmodifieddate``. Ids are numeric
strings handed out in increasing order. Every read returns a deep copy.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_crm.sandbox.common.ids import utc_now_iso
from airflow_provider_crm.sandbox.common.store import TokenIssuingStore
from airflow_provider_crm.sandbox.vendors.hubspot.properties import CREATE_DATE, LAST_MODIFIED, OBJECT_ID

FIRST_ORDER_ID = 1_000_001


class HubSpotState(TokenIssuingStore):
    """Orders by id, and OAuth access tokens with their expiry (wall-clock seconds)."""

    def __init__(self, lock: threading.RLock, clock: Callable[[], float] = time.time) -> None:
        super().__init__(lock, clock)
        # property name -> value -> ids holding it; built on first lookup, kept up to date after.
        self._index: dict[str, dict[str, set[str]]] = {}
        self._next_id = FIRST_ORDER_ID

    # Inspection helpers (public).

    def orders(self) -> list[dict[str, Any]]:
        """All stored orders, oldest first."""
        return self.records()

    def find_by_property(self, name: str, value: str) -> dict[str, Any] | None:
        """The first order whose property ``name`` equals ``value``, or ``None``."""
        with self._lock:
            owner = self.owner_of(name, value)
            return self.get(owner) if owner is not None else None

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump: orders and the number of issued tokens (never the tokens)."""
        with self._lock:
            return {"orders": self.orders(), "tokens_issued": self.tokens_issued}

    # Mutations (used by the emulator; values are already validated).

    def owner_of(self, name: str, value: str) -> str | None:
        """Id of the first order holding ``value`` in property ``name``."""
        with self._lock:
            if name == OBJECT_ID:
                return value if value in self._records else None
            holders = self._index.get(name)
            if holders is None:
                holders = self._index[name] = {}
                for order_id, record in self._records.items():
                    if (current := record["properties"].get(name)) is not None:
                        holders.setdefault(current, set()).add(order_id)
            found = holders.get(value)
            return min(found, key=int) if found else None

    def _reindex(self, order_id: str, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        for name, holders in self._index.items():
            old, new = before.get(name), after.get(name)
            if old == new:
                continue
            if old is not None:
                holders.get(old, set()).discard(order_id)
            if new is not None:
                holders.setdefault(new, set()).add(order_id)

    def create(self, properties: Mapping[str, str]) -> dict[str, Any]:
        """Store a new order (``""`` values are left unset) and return it."""
        now = utc_now_iso()
        with self._lock:
            order_id = str(self._next_id)
            self._next_id += 1
            values = {name: value for name, value in properties.items() if value != ""}
            values.update({OBJECT_ID: order_id, CREATE_DATE: now, LAST_MODIFIED: now})
            record = {
                "id": order_id,
                "properties": values,
                "createdAt": now,
                "updatedAt": now,
                "archived": False,
            }
            self._records[order_id] = record
            self._reindex(order_id, {}, values)
            return copy.deepcopy(record)

    def update(self, order_id: str, properties: Mapping[str, str]) -> dict[str, Any] | None:
        """Overwrite the given properties (``""`` clears one); ``None`` if the order is unknown."""
        now = utc_now_iso()
        with self._lock:
            record = self._records.get(order_id)
            if record is None:
                return None
            before = dict(record["properties"])
            for name, value in properties.items():
                if value == "":
                    record["properties"].pop(name, None)
                else:
                    record["properties"][name] = value
            record["properties"][LAST_MODIFIED] = now
            record["updatedAt"] = now
            self._reindex(order_id, before, record["properties"])
            return copy.deepcopy(record)

    def issue_token(self, ttl_seconds: float) -> str:
        """A new access token valid for ``ttl_seconds``."""
        token = f"sandbox-hubspot-oauth-{secrets.token_hex(20)}"
        self.add_token(token, self._clock() + ttl_seconds)
        return token

    def clear(self) -> None:
        """Forget orders and tokens and restart ids."""
        with self._lock:
            super().clear()
            self._index.clear()
            self._next_id = FIRST_ORDER_ID
