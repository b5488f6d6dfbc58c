"""Stored KObjects of the Kustomer emulator, with the lookups tests need.

Records are plain dicts (``id``, ``klass``, ``customer``, ``company`` plus the response
attributes). Every read returns a deep copy, so tests cannot change the store by accident.

``rev`` follows Kustomer's OpenAPI examples (LarisLab/kustomer-client:openapi.json@1d997b7: the 201 of
``POST /klasses/{name}`` and the 200s of the reads: ``rev`` 0 with ``updatedAt == createdAt``; the
200 of ``PUT /klasses/{name}/{id}``: ``rev`` 3 with a later ``updatedAt``): a new object is at 0 and
an update raises it. By how much per update is not documented; the emulator adds 1.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any

from airflow_provider_crm.sandbox.common.ids import new_object_id, utc_now_iso

FIRST_REV = 0
"""A new KObject's ``rev`` in every example of Kustomer's OpenAPI."""

ATTRIBUTE_KEYS = (
    "title",
    "description",
    "icon",
    "images",
    "custom",
    "tags",
    "rev",
    "createdAt",
    "updatedAt",
    "externalId",
    "data",
    "importedAt",
)


class KustomerState:
    """KObjects per klass name, with a per-klass unique externalId index."""

    def __init__(self, lock: threading.RLock, org_id: str) -> None:
        self._lock = lock
        self.org_id = org_id
        self._objects: dict[str, dict[str, dict[str, Any]]] = {}
        self._external_ids: dict[str, dict[str, str]] = {}

    # Inspection helpers (public).

    def klasses(self) -> list[str]:
        """Klass names that have held at least one object."""
        with self._lock:
            return list(self._objects)

    def kobjects(self, klass: str) -> list[dict[str, Any]]:
        """All stored objects of a klass, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._objects.get(klass, {}).values()))

    def get(self, klass: str, kobject_id: str) -> dict[str, Any] | None:
        """One object by id, or ``None``."""
        with self._lock:
            record = self._objects.get(klass, {}).get(kobject_id)
            return copy.deepcopy(record) if record is not None else None

    def find_by_external_id(self, klass: str, external_id: str) -> dict[str, Any] | None:
        """One object by externalId, or ``None``."""
        with self._lock:
            kobject_id = self._external_ids.get(klass, {}).get(external_id)
            return self.get(klass, kobject_id) if kobject_id is not None else None

    def count(self, klass: str | None = None) -> int:
        """Number of stored objects, in one klass or in all."""
        with self._lock:
            if klass is not None:
                return len(self._objects.get(klass, {}))
            return sum(len(objects) for objects in self._objects.values())

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump: org id and objects per klass."""
        with self._lock:
            return {
                "org_id": self.org_id,
                "klasses": {klass: copy.deepcopy(list(objs.values())) for klass, objs in self._objects.items()},
            }

    # Mutations (used by the emulator; bodies are already validated).

    def external_id_owner(self, klass: str, external_id: str) -> str | None:
        """Id of the object holding an externalId in a klass."""
        with self._lock:
            return self._external_ids.get(klass, {}).get(external_id)

    def create(
        self, klass: str, fields: Mapping[str, Any], customer: str | None, *, rev: int | None = None
    ) -> dict[str, Any]:
        """Store a new object (at ``rev``, default :data:`FIRST_REV`) and return it."""
        now = utc_now_iso()
        fields = copy.deepcopy(dict(fields))
        record: dict[str, Any] = {
            "id": new_object_id(),
            "klass": klass,
            "customer": customer,
            "company": fields.get("company"),
            "title": fields["title"],
            "description": fields.get("description"),
            "icon": fields.get("icon"),
            "images": fields.get("images", []),
            "custom": fields.get("custom", {}),
            "tags": fields.get("tags", []),
            "rev": FIRST_REV if rev is None else rev,
            "createdAt": fields.get("createdAt") or now,
            "updatedAt": now,
            "externalId": fields.get("externalId"),
            "data": fields.get("data"),
            "importedAt": fields.get("importedAt"),
        }
        with self._lock:
            self._objects.setdefault(klass, {})[record["id"]] = record
            self._external_ids.setdefault(klass, {})
            if record["externalId"] is not None:
                self._external_ids[klass][record["externalId"]] = record["id"]
            return copy.deepcopy(record)

    def update(self, klass: str, kobject_id: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge fields into an object (``custom`` key by key), raise ``rev`` by 1; ``None`` if unknown.

        ``rev`` in ``fields`` is the caller's check value (compared by the emulator), not stored.
        """
        fields = copy.deepcopy(dict(fields))
        with self._lock:
            record = self._objects.get(klass, {}).get(kobject_id)
            if record is None:
                return None
            index = self._external_ids.setdefault(klass, {})
            if "externalId" in fields and fields["externalId"] != record["externalId"]:
                index.pop(record["externalId"], None)
                if fields["externalId"] is not None:
                    index[fields["externalId"]] = kobject_id
            for key, value in fields.items():
                if key == "custom":
                    record["custom"].update(value)
                elif key != "rev":
                    record[key] = value
            record["rev"] += 1
            record["updatedAt"] = utc_now_iso()
            return copy.deepcopy(record)

    def delete(self, klass: str, kobject_id: str) -> bool:
        """Remove an object; ``False`` if unknown."""
        with self._lock:
            record = self._objects.get(klass, {}).pop(kobject_id, None)
            if record is None:
                return False
            if record["externalId"] is not None:
                self._external_ids.get(klass, {}).pop(record["externalId"], None)
            return True

    def clear(self) -> None:
        """Forget everything except the org id."""
        with self._lock:
            self._objects.clear()
            self._external_ids.clear()
