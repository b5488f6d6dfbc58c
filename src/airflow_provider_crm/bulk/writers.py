"""Per-vendor record writers for the bulk runner: key, validate, write and preview records.

Record shapes (keys as in the hooks' arguments):

- Kustomer create: ``external_id`` (the key; strongly advised), ``title``, ``custom``,
  ``customer_id``, ``company_id``, ``description``, ``tags``, ``data``, ``icon``, ``images``,
  ``created_at``, ``imported_at``.
- Kustomer update: ``id`` (the key) plus any of ``title``, ``custom``, ``external_id``,
  ``description``, ``tags``, ``data``, ``icon``, ``images``, ``created_at``, ``imported_at``,
  ``rev``, ``parent``.
- Kustomer upsert: the create fields, with ``external_id`` (the key) required.
- Kaiten: ``slug`` (the key) plus any of ``name``, ``external_customer_id``, ``domain``; a field
  that is absent keeps its value, a field set to ``null`` is cleared.
- MicroBase: ``id`` (the key) plus any of ``email``, ``first_name``, ``last_name``, ``status``,
  ``tags``.
- HubSpot: ``id`` (the key: internal id, or the ``id_property`` value) and ``properties``.

A writer's ``cell_type(column)`` says how a CSV cell of that column is typed (see
:mod:`~airflow_provider_crm.bulk.cells`). Kaiten and HubSpot writers have none: Kaiten's customer
fields are strings, and HubSpot takes every property value as a string on the wire
(``properties: dict[str, str]`` in HubSpot/hubspot-api-python, e.g.
``hubspot/crm/objects/models/simple_public_object_batch_input_upsert.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from airflow_provider_crm.bulk.ledger import (
    CREATED,
    ERROR,
    INVALID,
    REJECTED,
    RETRY,
    UNCHANGED,
    UPDATED,
    WOULD_CREATE,
    WOULD_UPDATE,
    Outcome,
)
from airflow_provider_crm.bulk.policy import retry_later
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmConfigurationError,
    CrmError,
    CrmNotFoundError,
    CrmPermissionError,
    CrmRateLimitError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.hubspot import BATCH_SIZE, HubSpotHook, prepare_batch_input
from airflow_provider_crm.hooks.hubspot_batch import unique_id_property
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.models.hubspot import BatchIncompleteError, BatchResult, HubSpotObject, holds, request_key
from airflow_provider_crm.models.kaiten import CustomerReplacement
from airflow_provider_crm.models.kustomer import KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.kustomer import cell_type as kustomer_cell_type
from airflow_provider_crm.models.kustomer_upsert import CREATE, UPDATE, KObjectUpsert
from airflow_provider_crm.models.microbase import CustomerUpdate
from airflow_provider_crm.models.microbase import cell_type as microbase_cell_type
from airflow_provider_crm.models.validation import validate_model

RATE_LIMIT_ROUNDS = 20
"""How many times a record waits out a rate limit (after the transport's own retries) before it is
given up on; each round waits what the vendor asked, so a 429 slows the run, it doesn't drop records."""

T = TypeVar("T")

SYSTEMIC = (CrmAuthenticationError, CrmPermissionError, CrmConfigurationError)


class StillRateLimitedError(CrmError):
    """A record waited out the vendor's rate limit :data:`RATE_LIMIT_ROUNDS` times and gave up."""


def waiting_out_rate_limits(call: Callable[[], T]) -> T:
    """Run ``call``, sleeping out each 429 the transport gave up on; HubSpot's ``DAILY`` propagates."""
    for _ in range(RATE_LIMIT_ROUNDS):
        try:
            return call()
        except CrmRateLimitError as exc:
            if exc.code == "DAILY":
                raise
            time.sleep(exc.retry_after or 1.0)
    raise StillRateLimitedError("still rate limited after waiting; replay it from the dead-letter file")


def _refusal(item: Item, action: str, error: CrmError) -> Outcome:
    status = RETRY if retry_later(error) else ERROR  # "retry": a task retry sends it again
    return Outcome(
        item.index, item.key, action, status=status, error_code=_code(error), error_message=str(error)[:1000]
    )


def _code(error: CrmError) -> str:
    if isinstance(error, StillRateLimitedError):
        return "rate_limited"
    if isinstance(error, CrmApiError):
        return error.code or (f"http_{error.status}" if error.status else "api_error")
    return type(error).__name__


def _fields(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(record) - set(names))
    if unknown:
        raise CrmValidationError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(names)}")
    return {name: record[name] for name in names if record.get(name) is not None}


def _key(record: dict[str, Any], field: str, index: int) -> str:
    value = record.get(field)
    return str(value) if value not in (None, "") else f"#{index}"


class PerRecordWriter:
    """Writes one record per request; turns each record's error into its outcome."""

    batch_size = 1

    def write(self, items: list[Item]) -> list[Outcome]:
        return [self._guarded(item, self.write_one) for item in items]

    def preview(self, items: list[Item]) -> list[Outcome]:
        return [self._guarded(item, self.preview_one, refused=INVALID) for item in items]

    def write_one(self, item: Item) -> Outcome:
        raise NotImplementedError

    def preview_one(self, item: Item) -> Outcome:
        raise NotImplementedError

    def _guarded(self, item: Item, action: Callable[[Item], Outcome], refused: str = REJECTED) -> Outcome:
        """One record's outcome; systemic errors and a spent daily limit stop the run instead."""
        try:
            return waiting_out_rate_limits(lambda: action(item))
        except (*SYSTEMIC, CrmRateLimitError):
            raise
        except CrmError as exc:
            return _refusal(item, refused, exc)


class KustomerCreateWriter(PerRecordWriter):
    """Creates KObjects; a record whose external id already exists is ``unchanged``."""

    FIELDS = (
        "title",
        "custom",
        "external_id",
        "customer_id",
        "company_id",
        "description",
        "tags",
        "data",
        "icon",
        "images",
        "created_at",
        "imported_at",
    )
    cell_type = staticmethod(kustomer_cell_type)

    def __init__(self, hook: KustomerHook, klass_name: str) -> None:
        self.hook = hook
        self.klass_name = klass_name

    def key(self, record: dict[str, Any], index: int) -> str:
        return _key(record, "external_id", index)

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(record, self.FIELDS)
        model_fields = {k: v for k, v in fields.items() if k != "customer_id"}
        validate_model(KObjectCreate, model_fields, record=f"KObject {self.key(record, 0)!r}")
        return fields

    def write_one(self, item: Item) -> Outcome:
        kobject, created = self.hook.create_or_get_kobject(self.klass_name, **item.prepared)
        return Outcome(item.index, item.key, CREATED if created else UNCHANGED, remote_id=kobject.id)

    def preview_one(self, item: Item) -> Outcome:
        external_id = item.prepared.get("external_id")
        found = self.hook.find_kobject_by_external_id(self.klass_name, external_id) if external_id else None
        if found is not None:
            return Outcome(item.index, item.key, UNCHANGED, remote_id=found.id, status="exists")
        return Outcome(item.index, item.key, WOULD_CREATE)


class KustomerUpdateWriter(PerRecordWriter):
    FIELDS = (
        "id",
        "title",
        "custom",
        "external_id",
        "description",
        "tags",
        "data",
        "icon",
        "images",
        "created_at",
        "imported_at",
        "rev",
        "parent",
    )
    cell_type = staticmethod(kustomer_cell_type)

    def __init__(self, hook: KustomerHook, klass_name: str) -> None:
        self.hook = hook
        self.klass_name = klass_name

    def key(self, record: dict[str, Any], index: int) -> str:
        return _key(record, "id", index)

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(record, self.FIELDS)
        if "id" not in fields:
            raise CrmValidationError("id is required", field="id")
        validate_model(
            KObjectUpdate, {k: v for k, v in fields.items() if k != "id"}, record=f"KObject {fields['id']!r}"
        )
        return fields

    def write_one(self, item: Item) -> Outcome:
        fields = dict(item.prepared)
        kobject = self.hook.update_kobject(self.klass_name, fields.pop("id"), **fields)
        return Outcome(item.index, item.key, UPDATED, remote_id=kobject.id)

    def preview_one(self, item: Item) -> Outcome:
        try:
            found = self.hook.get_kobject(self.klass_name, item.prepared["id"])
        except CrmNotFoundError:
            return Outcome(
                item.index, item.key, INVALID, status="error", error_code="not_found", error_message="no such KObject"
            )
        rev = item.prepared.get("rev")
        if rev is not None and found.rev is not None and rev != found.rev:
            message = f"rev {rev} is stale: the KObject is at rev {found.rev}; Kustomer would answer 409"
            return Outcome(item.index, item.key, INVALID, status="error", error_code="stale_rev", error_message=message)
        return Outcome(item.index, item.key, WOULD_UPDATE, remote_id=found.id)


class KustomerUpsertWriter(KustomerCreateWriter):
    """Creates or updates KObjects by ``external_id``: a lookup, then a ``PUT`` or a ``POST``.

    The ledger says what each record did: ``created``, ``updated``, or ``unchanged`` when the
    stored object already held every value (then only the lookup was sent). A dry run looks each
    record up and reports ``would_create``, ``would_update`` or ``unchanged``.
    """

    def prepare(self, record: dict[str, Any]) -> KObjectUpsert:  # type: ignore[override]
        fields = super().prepare(record)
        external_id = fields.pop("external_id", None)
        if external_id is None:
            raise CrmValidationError("external_id is required: the upsert finds the KObject by it", field="external_id")
        return KObjectUpsert.build(self.klass_name, external_id, **fields)

    def write_one(self, item: Item) -> Outcome:
        kobject, result = self.hook.write_upsert(item.prepared)
        action = {"created": CREATED, "updated": UPDATED, "unchanged": UNCHANGED}[result]
        return Outcome(item.index, item.key, action, remote_id=kobject.id)

    def preview_one(self, item: Item) -> Outcome:
        plan, stored = self.hook.preview_upsert(item.prepared)
        if plan.action == CREATE:
            return Outcome(item.index, item.key, WOULD_CREATE)
        action = WOULD_UPDATE if plan.action == UPDATE else UNCHANGED
        return Outcome(item.index, item.key, action, remote_id=stored.id if stored else None)


class KaitenWriter(PerRecordWriter):
    """Read-merge-write per customer; a merge that changes nothing is ``unchanged`` and not written."""

    FIELDS = ("slug", "name", "external_customer_id", "domain")
    MERGED = ("name", "external_customer_id", "domain")

    def __init__(self, hook: KaitenHook) -> None:
        self.hook = hook

    def key(self, record: dict[str, Any], index: int) -> str:
        return _key(record, "slug", index)

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(record) - set(self.FIELDS))
        if unknown:
            raise CrmValidationError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(self.FIELDS)}")
        if not record.get("slug"):
            raise CrmValidationError("slug is required", field="slug")
        changes = {name: record[name] for name in self.MERGED if name in record}
        if not changes:
            raise CrmValidationError("nothing to update; give name, external_customer_id or domain")
        record_name = f"Kaiten customer {record['slug']!r}"
        validate_model(CustomerReplacement, {"name": "placeholder"} | changes, record=record_name)
        return {"slug": record["slug"], "changes": changes}

    def _merge(self, item: Item) -> tuple[dict[str, Any], dict[str, Any]]:
        current, merged = self.hook.plan_merge(item.prepared["slug"], item.prepared["changes"])
        return {name: getattr(current, name) for name in self.MERGED}, merged

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
            return Outcome(
                item.index,
                item.key,
                INVALID,
                status="error",
                error_code="Customer.NotFound",
                error_message="no such customer",
            )
        action = UNCHANGED if after == before else WOULD_UPDATE
        return Outcome(item.index, item.key, action, remote_id=item.prepared["slug"])


class MicroBaseWriter(PerRecordWriter):
    FIELDS = ("id", "email", "first_name", "last_name", "status", "tags")
    cell_type = staticmethod(microbase_cell_type)

    def __init__(self, hook: MicroBaseHook) -> None:
        self.hook = hook

    def key(self, record: dict[str, Any], index: int) -> str:
        return _key(record, "id", index)

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(record, self.FIELDS)
        validate_model(CustomerUpdate, fields, record=f"MicroBase customer {record.get('id')!r}")
        return fields

    def write_one(self, item: Item) -> Outcome:
        fields = dict(item.prepared)
        customer = self.hook.update_customer(fields.pop("id"), **fields)
        return Outcome(item.index, item.key, UPDATED, remote_id=customer.id)

    def preview_one(self, item: Item) -> Outcome:
        try:
            customer = self.hook.get_customer(item.prepared["id"])
        except CrmNotFoundError:
            return Outcome(
                item.index,
                item.key,
                INVALID,
                status="error",
                error_code="customer_not_found",
                error_message="no such customer",
            )
        return Outcome(item.index, item.key, WOULD_UPDATE, remote_id=customer.id)


class HubSpotBatchWriter:
    """Batch update or upsert, up to 100 records per unit; each record gets the outcome HubSpot gave it.

    Where HubSpot's answer does not settle a record, the hook reads the order back (see
    :mod:`~airflow_provider_crm.hooks.hubspot_batch`); when a request fails outright, the records
    it may have written are read back here. A record is rejected only when HubSpot refused it or
    does not hold its values, so nothing HubSpot applied goes to the dead letter.
    """

    def __init__(
        self, hook: HubSpotHook, *, upsert: bool, id_property: str | None, clear_nulls: bool, batch_size: int = 100
    ) -> None:
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {BATCH_SIZE}, not {batch_size!r}")
        self.batch_size = batch_size
        self.hook = hook
        self.upsert = upsert
        self.id_property = id_property
        self.clear_nulls = clear_nulls

    def key(self, record: dict[str, Any], index: int) -> str:
        return _key(record, "id", index)

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
                    outcomes[position] = _refusal(items[position], REJECTED, still)
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
                refusal = _refusal(item, REJECTED, cause)
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
                    outcomes[position] = _refusal(items[position], INVALID, exc)
                continue
            for position, order_id in zip(group, ids, strict=True):
                outcomes[position] = self._previewed(items[position], found.get(order_id))
        return [outcomes[position] for position in range(len(items))]

    def _previewed(self, item: Item, found: HubSpotObject | None) -> Outcome:
        if found is not None:
            return Outcome(item.index, item.key, WOULD_UPDATE, remote_id=found.id)
        if self.upsert:
            return Outcome(item.index, item.key, WOULD_CREATE)
        return Outcome(
            item.index,
            item.key,
            INVALID,
            status="error",
            error_code="OBJECT_NOT_FOUND",
            error_message="no such order",
        )
