"""Kaiten writer: read-merge-write one customer per request."""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.bulk.ledger import UNCHANGED, UPDATED, WOULD_UPDATE, Outcome
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.bulk.writers.common import PerRecordWriter, not_found_outcome, record_key
from airflow_provider_crm.errors import CrmNotFoundError, CrmValidationError
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.models.kaiten import REPLACED_FIELDS, validate_changes


class KaitenWriter(PerRecordWriter):
    """Read-merge-write per customer; a merge that changes nothing is ``unchanged`` and not written."""

    FIELDS = ("slug", *REPLACED_FIELDS)

    def __init__(self, hook: KaitenHook) -> None:
        self.hook = hook

    def key(self, record: dict[str, Any], index: int) -> str:
        return record_key(record, "slug", index)

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(record) - set(self.FIELDS))
        if unknown:
            raise CrmValidationError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(self.FIELDS)}")
        if not record.get("slug"):
            raise CrmValidationError("slug is required", field="slug")
        changes = {name: record[name] for name in REPLACED_FIELDS if name in record}
        return {"slug": record["slug"], "changes": validate_changes(record["slug"], changes)}

    def _merge(self, item: Item) -> tuple[dict[str, Any], dict[str, Any]]:
        current, merged = self.hook.plan_merge(item.prepared["slug"], item.prepared["changes"])
        return current.replaced_fields(), merged

    def write_one(self, item: Item) -> Outcome:
        before, after = self._merge(item)
        if after == before:
            return Outcome(item.index, item.key, UNCHANGED, remote_id=item.prepared["slug"])
        self.hook.update_customer(item.prepared["slug"], **after)
        return Outcome(item.index, item.key, UPDATED, remote_id=item.prepared["slug"])

    def preview_one(self, item: Item) -> Outcome:
        try:
            before, after = self._merge(item)
        except CrmNotFoundError:
            return not_found_outcome(item, "Customer.NotFound", "no such customer")
        action = UNCHANGED if after == before else WOULD_UPDATE
        return Outcome(item.index, item.key, action, remote_id=item.prepared["slug"])
