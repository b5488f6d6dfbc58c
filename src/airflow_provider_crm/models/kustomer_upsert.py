"""Create-or-update of a KObject by its external id, decided without sending anything.

Kustomer has no upsert endpoint. Its reference offers a lookup by "Klass name and unique external
ID" (``GET /v1/klasses/{name}/externalId={externalId}``,
developer.kustomer.com/api/core-resources/get-kobject-by-external-id), a create
(``POST /v1/klasses/{name}``) and an update by id (``PUT /v1/klasses/{name}/{id}``). An upsert is
therefore: look the external id up, then decide here what to send (:func:`plan_upsert`), then
send it. The decision only needs the record and the object the lookup found, so the same plan
serves one record at a time (the hook) or many at once: a bulk writer can look the records up,
plan each, and send the creates and the updates through Kustomer's bulk endpoints
(:meth:`UpsertPlan.bulk_item`).

A stored object is left alone when it already shows every value the record would send
(``unchanged``). Only values the object shows can be compared: a field the read does not return
(Kustomer's lookup example has no ``description`` or ``data``) counts as different, so the update
is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models.kustomer import KObject, KObjectCreate, custom_attribute_suffix
from airflow_provider_crm.models.kustomer_requests import KObjectCreateRequest, KObjectUpdateRequest, given
from airflow_provider_crm.models.validation import validate_model
from airflow_provider_crm.models.values import aware_datetime

Decision = Literal["create", "update", "unchanged"]
Result = Literal["created", "updated", "unchanged"]

CREATE: Decision = "create"
UPDATE: Decision = "update"
UNCHANGED: Decision = "unchanged"

LINK_FIELDS = ("externalId", "company")
"""Create-body fields an update does not send: the key itself, and the company link (Kustomer's
update body has no ``customer`` or ``company``)."""
INSTANT_FIELDS = ("createdAt", "importedAt")


@dataclass(frozen=True)
class KObjectUpsert:
    """One validated record to create or update in ``klass_name``, found by ``external_id``.

    ``create_body`` is the ``POST`` body (``externalId`` included); ``customer_id`` links a new
    object to a customer (in the path, or as ``customer`` in a bulk create). An existing object
    keeps its customer and company: Kustomer's ``PUT`` takes neither.
    """

    klass_name: str
    external_id: str
    create_body: dict[str, Any]
    customer_id: str | None = None

    @classmethod
    def build(
        cls, klass_name: str, external_id: Any, *, customer_id: str | None = None, **fields: Any
    ) -> KObjectUpsert:
        """Validate a record (as a create: ``title`` is required); raise :class:`CrmValidationError` if bad."""
        record = upsert_label(klass_name, external_id)
        if not isinstance(external_id, str) or not external_id.strip():
            raise CrmValidationError(
                f"{record}: external_id is required (a non-empty string): the upsert finds the KObject by it",
                field="external_id",
                record=record,
            )
        if customer_id is not None and (not isinstance(customer_id, str) or not customer_id.strip()):
            raise CrmValidationError(
                f"{record}: customer_id must be a non-empty id string, got {customer_id!r}",
                field="customer_id",
                record=record,
            )
        body = validate_model(KObjectCreate, {**given(fields), "external_id": external_id}, record=record).to_body()
        return cls(klass_name, external_id, body, customer_id)

    @property
    def update_body(self) -> dict[str, Any]:
        """The ``PUT`` body: every field of the record, less the external id and the links.

        The whole record is sent, not only the fields that differ: whether Kustomer's ``PUT``
        replaces ``custom`` or merges it key by key is not documented, and the full record gives
        the same result either way for the attributes the record names.
        """
        return {key: value for key, value in self.create_body.items() if key not in LINK_FIELDS}

    @property
    def label(self) -> str:
        return upsert_label(self.klass_name, self.external_id)

    def as_create(self) -> KObjectCreateRequest:
        """The create this upsert sends when the external id is new (validated already)."""
        return KObjectCreateRequest(self.klass_name, dict(self.create_body), self.external_id, self.customer_id)

    def as_update(self, kobject_id: str) -> KObjectUpdateRequest:
        """The update by id this upsert sends when ``kobject_id`` holds the external id (validated already).

        :param kobject_id: The id of the stored KObject.
        """
        return KObjectUpdateRequest(self.klass_name, kobject_id, self.update_body)


@dataclass(frozen=True)
class UpsertPlan:
    """What to send for one record: a create, an update of ``kobject_id``, or nothing."""

    action: Decision
    body: dict[str, Any] = field(default_factory=dict)
    kobject_id: str | None = None
    changed: tuple[str, ...] = ()
    """The fields whose stored value differs from the record's (for logs); empty for a create."""
    customer_id: str | None = None

    def bulk_item(self) -> dict[str, Any]:
        """The item for Kustomer's bulk endpoints: a create body with ``customer`` (``POST
        /v1/klasses/{name}/bulk``), or an update body with ``id`` (``PUT /v1/klasses/{name}/bulk``)."""
        if self.action == CREATE:
            return {**self.body, "customer": self.customer_id} if self.customer_id else dict(self.body)
        if self.action == UPDATE:
            return {"id": self.kobject_id, **self.body}
        raise ValueError("an unchanged record has nothing to send")


def plan_upsert(request: KObjectUpsert, stored: KObject | None) -> UpsertPlan:
    """Create when nothing is stored; else update, unless the stored object already holds every value."""
    if stored is None:
        return UpsertPlan(CREATE, dict(request.create_body), customer_id=request.customer_id)
    body = request.update_body
    changed = tuple(differing_fields(body, stored_attributes(stored)))
    if not changed:
        return UpsertPlan(UNCHANGED, kobject_id=stored.id)
    return UpsertPlan(UPDATE, body, kobject_id=stored.id, changed=changed)


def stored_attributes(stored: KObject) -> dict[str, Any]:
    """The ``attributes`` of a read KObject document (empty when it has none)."""
    data = stored.raw.get("data") if isinstance(stored.raw, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    return attributes if isinstance(attributes, dict) else {}


def differing_fields(body: dict[str, Any], attributes: dict[str, Any]) -> list[str]:
    """The body fields the stored attributes do not show (custom attributes named one by one).

    A field the attributes leave out counts as different; inside ``custom`` a ``null`` matches an
    attribute that is absent or ``null``. Date-times compare as instants, numbers as numbers, and
    a boolean never equals a number.
    """
    differing: list[str] = []
    for name, sent in body.items():
        if name == "custom" and isinstance(sent, dict):
            held = attributes.get("custom", ...)
            if held is None:
                held = {}
            if not isinstance(held, dict):  # not returned (or not an object): cannot tell
                differing.append("custom")
                continue
            differing += [f"custom.{key}" for key, value in sent.items() if not _holds_attribute(held, key, value)]
        elif name not in attributes or not same_value(sent, attributes[name], instant=name in INSTANT_FIELDS):
            differing.append(name)
    return differing


def _holds_attribute(held: dict[str, Any], key: str, value: Any) -> bool:
    if value is None:
        return held.get(key) is None
    return key in held and same_value(value, held[key], instant=custom_attribute_suffix(key) == "At")


def same_value(sent: Any, held: Any, *, instant: bool = False) -> bool:
    """Whether a stored value is the value sent (``instant``: the same moment written either way)."""
    if instant and isinstance(sent, str) and isinstance(held, str):
        try:
            return aware_datetime(sent) == aware_datetime(held)
        except ValueError:
            return sent == held
    if isinstance(sent, bool) or isinstance(held, bool):
        return isinstance(sent, bool) and isinstance(held, bool) and sent == held
    if isinstance(sent, int | float) and isinstance(held, int | float):
        return sent == held
    return _canonical(sent) == _canonical(held)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def upsert_label(klass_name: str, external_id: Any) -> str:
    return f"Kustomer KObject upsert in klass {klass_name!r} (externalId {external_id!r})"
