"""HubSpot writer: batch update or upsert orders, up to 100 per request."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Any

from airflow_provider_crm.bulk.ledger import CREATED, INVALID, REJECTED, UPDATED, WOULD_CREATE, WOULD_UPDATE, Outcome
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.bulk.writers.common import (
    RATE_LIMIT_ROUNDS,
    SYSTEMIC,
    StillRateLimitedError,
    not_found_outcome,
    record_key,
    refused_outcome,
    waiting_out_rate_limits,
)
from airflow_provider_crm.errors import CrmError, CrmRateLimitError, CrmValidationError
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.hubspot_batch import unique_id_property
from airflow_provider_crm.models.hubspot import (
    BATCH_SIZE,
    BatchIncompleteError,
    BatchResult,
    HubSpotObject,
    checked_batch_size,
    holds,
    prepare_batch_input,
    request_key,
)


class HubSpotBatchWriter:
    """Batch update or upsert, up to 100 records per unit; each record gets the outcome HubSpot gave it.

    Where HubSpot's answer does not settle a record, the hook reads the order back (see
    :mod:`~airflow_provider_crm.hooks.hubspot_batch`); when a request fails outright, the records
    it may have written are read back here. A record is rejected only when HubSpot refused it or
    does not hold its values, so nothing HubSpot applied goes to the dead letter.
    """

    def __init__(
        self,
        hook: HubSpotHook,
        *,
        upsert: bool,
        id_property: str | None,
        clear_nulls: bool,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.batch_size = checked_batch_size(batch_size)
        self.hook = hook
        self.upsert = upsert
        self.id_property = id_property
        self.clear_nulls = clear_nulls

    def key(self, record: dict[str, Any], index: int) -> str:
        return record_key(record, "id", index)

    @staticmethod
    def same_record(prepared: dict[str, Any]) -> str:
        """Records HubSpot may take for one order (same id property, id without case or padding)."""
        return "\x1f".join(request_key({"idProperty": prepared.get("id_property"), "id": prepared["id"]}))

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(record) - {"id", "properties", "id_property"})
        if unknown:
            raise CrmValidationError(f"unknown field(s) {', '.join(unknown)}; expected id, properties, id_property")
        item = {"id_property": self.id_property, **{k: v for k, v in record.items() if v is not None}}
        body = prepare_batch_input(0, item, clear_nulls=self.clear_nulls, need_id_property=self.upsert)
        return {**item, "_sent": body["properties"]}

    def write(self, items: list[Item]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        pending = list(range(len(items)))
        send = self.hook.batch_upsert_orders if self.upsert else self.hook.batch_update_orders
        rounds = 0
        while pending:
            inputs = [self._input(items[position]) for position in pending]
            stopped: BatchIncompleteError | None = None
            try:
                result = send(inputs, clear_nulls=self.clear_nulls)
            except BatchIncompleteError as exc:
                self._settle(items, pending, exc.result, outcomes)
                stopped, cause = exc, exc.cause
                pending = [pending[position] for position in sorted(exc.uncertain + exc.unsent)]
            except CrmError as exc:
                cause = exc
            else:
                self._settle(items, pending, result, outcomes)
                break
            limited = isinstance(cause, CrmRateLimitError)
            if (limited and getattr(cause, "code", None) == "DAILY") or isinstance(cause, SYSTEMIC):
                # Stop the run; the error says what this unit wrote before it (a retry resends the rest).
                raise stopped if stopped is not None and outcomes else cause
            if limited and rounds < RATE_LIMIT_ROUNDS:
                rounds += 1  # HubSpot applies nothing of a request it answers 429: send the rest again
                time.sleep(getattr(cause, "retry_after", None) or 1.0)
                continue
            if limited:
                still = StillRateLimitedError("still rate limited after waiting; replay it from the dead-letter file")
                for position in pending:
                    outcomes[position] = refused_outcome(items[position], REJECTED, still)
                break
            self._read_back(items, pending, cause, outcomes)
            break
        return [outcomes[position] for position in range(len(items))]

    @staticmethod
    def _input(item: Item) -> dict[str, Any]:
        return {k: v for k, v in item.prepared.items() if k != "_sent"}

    @staticmethod
    def _settle(items: list[Item], pending: list[int], result: BatchResult, outcomes: dict[int, Outcome]) -> None:
        """Outcomes from a batch result whose positions are positions in ``pending``."""
        for position, obj in result.written.items():
            item = items[pending[position]]
            action = CREATED if obj.new else UPDATED
            outcomes[pending[position]] = Outcome(item.index, item.key, action, remote_id=obj.id)
        for error in result.errors:
            item = items[pending[error.index]]
            outcomes[pending[error.index]] = Outcome(
                item.index,
                item.key,
                REJECTED,
                status="error",
                error_code=error.category or "error",
                error_message=error.message[:1000],
            )

    def _read_back(self, items: list[Item], pending: list[int], cause: CrmError, outcomes: dict[int, Outcome]) -> None:
        """Settle records of a failed request from what HubSpot holds; if even that fails, stop."""
        held = self._held(items, pending)
        if held is None:
            raise cause
        for position in pending:
            item = items[position]
            obj = held.get(position)
            if obj is not None and holds(obj, item.prepared["_sent"]):
                outcomes[position] = Outcome(item.index, item.key, UPDATED, remote_id=obj.id)
            else:
                refusal = refused_outcome(item, REJECTED, cause)
                outcomes[position] = replace(refusal, error_message=f"not applied (read back): {refusal.error_message}")

    def _held(self, items: list[Item], positions: list[int]) -> dict[int, HubSpotObject] | None:
        """The orders the records address, by position (absent: no such order); None if unreadable."""
        found: dict[int, HubSpotObject] = {}
        groups: dict[str | None, list[int]] = {}
        for position in positions:
            groups.setdefault(unique_id_property(items[position].prepared.get("id_property")), []).append(position)
        for id_property, group in groups.items():
            ids = [str(items[position].prepared["id"]) for position in group]
            names = sorted({name for position in group for name in items[position].prepared["_sent"]})
            try:
                orders = waiting_out_rate_limits(
                    partial(self.hook.read_orders, ids, id_property=id_property, properties=names)
                )
            except (*SYSTEMIC, CrmRateLimitError):
                raise
            except CrmError:
                return None
            for position, order_id in zip(group, ids, strict=True):
                if order_id in orders:
                    found[position] = orders[order_id]
        return found

    def preview(self, items: list[Item]) -> list[Outcome]:
        """Look the records up (batch read, 100 per request) to tell would-create from would-update."""
        outcomes: dict[int, Outcome] = {}
        groups: dict[str | None, list[int]] = {}
        for position, item in enumerate(items):
            groups.setdefault(unique_id_property(item.prepared.get("id_property")), []).append(position)
        for id_property, group in groups.items():
            ids = [str(items[position].prepared["id"]) for position in group]
            try:
                found = waiting_out_rate_limits(partial(self.hook.read_orders, ids, id_property=id_property))
            except (*SYSTEMIC, CrmRateLimitError):
                raise
            except CrmError as exc:
                for position in group:
                    outcomes[position] = refused_outcome(items[position], INVALID, exc)
                continue
            for position, order_id in zip(group, ids, strict=True):
                outcomes[position] = self._previewed(items[position], found.get(order_id))
        return [outcomes[position] for position in range(len(items))]

    def _previewed(self, item: Item, found: HubSpotObject | None) -> Outcome:
        if found is not None:
            return Outcome(item.index, item.key, WOULD_UPDATE, remote_id=found.id)
        if self.upsert:
            return Outcome(item.index, item.key, WOULD_CREATE)
        return not_found_outcome(item, "OBJECT_NOT_FOUND", "no such order")
