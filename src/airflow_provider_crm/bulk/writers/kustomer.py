"""Kustomer writers: create, update and upsert KObjects one record per request."""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.bulk.ledger import CREATED, INVALID, UNCHANGED, UPDATED, WOULD_CREATE, WOULD_UPDATE, Outcome
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.bulk.writers.common import PerRecordWriter, known_fields, record_key
from airflow_provider_crm.errors import CrmNotFoundError, CrmValidationError
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.models.kustomer import cell_type as kustomer_cell_type
from airflow_provider_crm.models.kustomer_requests import (
    CREATE_FIELDS,
    UPDATE_FIELDS,
    KObjectCreateRequest,
    KObjectUpdateRequest,
)
from airflow_provider_crm.models.kustomer_upsert import CREATE, UPDATE, KObjectUpsert


class KObjectWriter(PerRecordWriter):
    """Writes the KObjects of one klass through a :class:`KustomerHook`, one record per request."""

    cell_type = staticmethod(kustomer_cell_type)

    def __init__(self, hook: KustomerHook, klass_name: str) -> None:
        self.hook = hook
        self.klass_name = klass_name


class KustomerCreateWriter(KObjectWriter):
    """Creates KObjects; a record whose external id already exists is ``unchanged``."""

    FIELDS = CREATE_FIELDS

    def key(self, record: dict[str, Any], index: int) -> str:
        return record_key(record, "external_id", index)

    def prepare(self, record: dict[str, Any]) -> KObjectCreateRequest:
        return KObjectCreateRequest.build(self.klass_name, **known_fields(record, self.FIELDS))

    def write_one(self, item: Item) -> Outcome:
        kobject, created = self.hook.write_create(item.prepared)
        return Outcome(item.index, item.key, CREATED if created else UNCHANGED, remote_id=kobject.id)

    def preview_one(self, item: Item) -> Outcome:
        external_id = item.prepared.external_id
        found = self.hook.find_kobject_by_external_id(self.klass_name, external_id) if external_id else None
        if found is not None:
            return Outcome(item.index, item.key, UNCHANGED, remote_id=found.id, status="exists")
        return Outcome(item.index, item.key, WOULD_CREATE)


class KustomerUpdateWriter(KObjectWriter):
    """Updates KObjects by ``id``; a dry run reads each one and flags a stale ``rev``."""

    FIELDS = ("id", *UPDATE_FIELDS)

    def key(self, record: dict[str, Any], index: int) -> str:
        return record_key(record, "id", index)

    def prepare(self, record: dict[str, Any]) -> KObjectUpdateRequest:
        fields = known_fields(record, self.FIELDS)
        if "id" not in fields:
            raise CrmValidationError("id is required", field="id")
        return KObjectUpdateRequest.build(self.klass_name, fields.pop("id"), **fields)

    def write_one(self, item: Item) -> Outcome:
        kobject = self.hook.write_update(item.prepared)
        return Outcome(item.index, item.key, UPDATED, remote_id=kobject.id)

    def preview_one(self, item: Item) -> Outcome:
        try:
            found = self.hook.get_kobject(self.klass_name, item.prepared.kobject_id)
        except CrmNotFoundError:
            return Outcome(
                item.index, item.key, INVALID, status="error", error_code="not_found", error_message="no such KObject"
            )
        rev = item.prepared.rev
        if rev is not None and found.rev is not None and rev != found.rev:
            message = f"rev {rev} is stale: the KObject is at rev {found.rev}; Kustomer would answer 409"
            return Outcome(item.index, item.key, INVALID, status="error", error_code="stale_rev", error_message=message)
        return Outcome(item.index, item.key, WOULD_UPDATE, remote_id=found.id)


class KustomerUpsertWriter(KustomerCreateWriter):
    """Creates or updates KObjects by ``external_id``: a lookup, then a ``PUT`` or a ``POST``.

    The ledger says what each record did: ``created``, ``updated``, or ``unchanged`` when the
    stored object already held every value (then only the lookup was sent). A record whose id the
    incremental-sync store knows is a ``PUT`` by that id, without the lookup. A dry run looks each
    record up and reports ``would_create``, ``would_update`` or ``unchanged``.
    """

    def prepare(self, record: dict[str, Any]) -> KObjectUpsert:  # type: ignore[override]
        fields = known_fields(record, self.FIELDS)
        external_id = fields.pop("external_id", None)
        if external_id is None:
            raise CrmValidationError("external_id is required: the upsert finds the KObject by it", field="external_id")
        return KObjectUpsert.build(self.klass_name, external_id, **fields)

    def write_one(self, item: Item) -> Outcome:
        if item.known_id:
            # The incremental-sync store remembers the id: update by it, with no lookup. If the object
            # is gone, find or create it by external id; any other refusal rejects the record, the
            # store forgets the id, and the next run takes the lookup path.
            try:
                kobject = self.hook.write_update(item.prepared.as_update(item.known_id))
                return Outcome(item.index, item.key, UPDATED, remote_id=kobject.id)
            except CrmNotFoundError:
                pass
        kobject, result = self.hook.write_upsert(item.prepared)
        action = {"created": CREATED, "updated": UPDATED, "unchanged": UNCHANGED}[result]
        return Outcome(item.index, item.key, action, remote_id=kobject.id)

    def preview_one(self, item: Item) -> Outcome:
        plan, stored = self.hook.preview_upsert(item.prepared)
        if plan.action == CREATE:
            return Outcome(item.index, item.key, WOULD_CREATE)
        action = WOULD_UPDATE if plan.action == UPDATE else UNCHANGED
        return Outcome(item.index, item.key, action, remote_id=stored.id if stored else None)
