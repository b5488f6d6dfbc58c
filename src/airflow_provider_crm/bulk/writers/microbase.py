"""MicroBase writer: ``customer.update`` one record per request."""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.bulk.ledger import UPDATED, WOULD_UPDATE, Outcome
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.bulk.writers.common import PerRecordWriter, known_fields, not_found_outcome, record_key
from airflow_provider_crm.errors import CrmNotFoundError
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.models.microbase import UPDATE_FIELDS, customer_update
from airflow_provider_crm.models.microbase import cell_type as microbase_cell_type


class MicroBaseWriter(PerRecordWriter):
    FIELDS = ("id", *UPDATE_FIELDS)
    cell_type = staticmethod(microbase_cell_type)

    def __init__(self, hook: MicroBaseHook) -> None:
        self.hook = hook

    def key(self, record: dict[str, Any], index: int) -> str:
        return record_key(record, "id", index)

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        fields = known_fields(record, self.FIELDS)
        customer_update(fields)
        return fields

    def write_one(self, item: Item) -> Outcome:
        fields = dict(item.prepared)
        customer = self.hook.update_customer(fields.pop("id"), **fields)
        return Outcome(item.index, item.key, UPDATED, remote_id=customer.id)

    def preview_one(self, item: Item) -> Outcome:
        try:
            customer = self.hook.get_customer(item.prepared["id"])
        except CrmNotFoundError:
            return not_found_outcome(item, "customer_not_found", "no such customer")
        return Outcome(item.index, item.key, WOULD_UPDATE, remote_id=customer.id)
