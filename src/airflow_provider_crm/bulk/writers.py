"""Per-vendor record writers for the bulk runner: key, validate, write and preview records.

Record shapes (keys as in the hooks' arguments):

- Kustomer create: ``external_id`` (the key; strongly advised), ``title``, ``custom``,
  ``customer_id``, ``company_id``, ``description``, ``tags``, ``data``, ``icon``, ``images``,
  ``created_at``, ``imported_at``.
- Kustomer update: ``id`` (the key) plus any of ``title``, ``custom``, ``external_id``,
  ``description``, ``tags``, ``data``, ``icon``, ``images``, ``created_at``, ``imported_at``,
  ``rev``, ``parent``.
- Kaiten: ``slug`` (the key) plus any of ``name``, ``external_customer_id``, ``domain``; a field
  that is absent keeps its value, a field set to ``null`` is cleared.
- MicroBase: ``id`` (the key) plus any of ``email``, ``first_name``, ``last_name``, ``status``,
  ``tags``.
- HubSpot: ``id`` (the key: internal id, or the ``id_property`` value) and ``properties``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from airflow_provider_crm.bulk.ledger import (
    CREATED,
    INVALID,
    REJECTED,
    UNCHANGED,
    UPDATED,
    WOULD_CREATE,
    WOULD_UPDATE,
    Outcome,
)
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
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.models.kaiten import CustomerReplacement
from airflow_provider_crm.models.kustomer import KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.microbase import CustomerUpdate
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
    return Outcome(
        item.index, item.key, action, status="error", error_code=_code(error), error_message=str(error)[:1000]
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
    """Batch update or upsert, 100 inputs per call; HubSpot's per-input errors become outcomes."""

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

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(record) - {"id", "properties", "id_property"})
        if unknown:
            raise CrmValidationError(f"unknown field(s) {', '.join(unknown)}; expected id, properties, id_property")
        item = {"id_property": self.id_property, **{k: v for k, v in record.items() if v is not None}}
        prepare_batch_input(0, item, clear_nulls=self.clear_nulls, need_id_property=self.upsert)
        return item

    def write(self, items: list[Item]) -> list[Outcome]:
        inputs = [item.prepared for item in items]
        send = self.hook.batch_upsert_orders if self.upsert else self.hook.batch_update_orders
        try:
            result = waiting_out_rate_limits(lambda: send(inputs, clear_nulls=self.clear_nulls))
        except (*SYSTEMIC, CrmRateLimitError):
            raise
        except CrmError as exc:
            return [_refusal(item, REJECTED, exc) for item in items]
        errors = {error.index: error for error in result.errors}
        written = {self._match_key(obj): obj for obj in result.results}
        outcomes = []
        for position, item in enumerate(items):
            if position in errors:
                error = errors[position]
                outcomes.append(
                    Outcome(
                        item.index,
                        item.key,
                        REJECTED,
                        status="error",
                        error_code=error.category or "error",
                        error_message=error.message[:1000],
                    )
                )
                continue
            obj = written.get(str(item.prepared["id"]))
            action = CREATED if obj is not None and obj.new else UPDATED
            outcomes.append(Outcome(item.index, item.key, action, remote_id=obj.id if obj else None))
        return outcomes

    def _match_key(self, obj: Any) -> str:
        if self.id_property:
            value = obj.properties.get(self.id_property)
            if value:
                return str(value)
        return str(obj.id)

    def preview(self, items: list[Item]) -> list[Outcome]:
        """Look each record up (one read per record) to tell would-create from would-update."""
        outcomes = []
        for item in items:
            try:
                found = self.hook.get_order(str(item.prepared["id"]), id_property=self.id_property)
            except CrmNotFoundError:
                if self.upsert:
                    outcomes.append(Outcome(item.index, item.key, WOULD_CREATE))
                else:
                    outcomes.append(
                        Outcome(
                            item.index,
                            item.key,
                            INVALID,
                            status="error",
                            error_code="OBJECT_NOT_FOUND",
                            error_message="no such order",
                        )
                    )
                continue
            outcomes.append(Outcome(item.index, item.key, WOULD_UPDATE, remote_id=found.id))
        return outcomes
