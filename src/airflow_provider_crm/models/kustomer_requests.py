"""Kustomer KObject create and update requests, validated once, before anything is sent.

The hook, the operators and the bulk writers all take a record as keyword arguments named after
the fields of :class:`~airflow_provider_crm.models.kustomer.KObjectCreate` and
:class:`~airflow_provider_crm.models.kustomer.KObjectUpdate` (plus ``customer_id``, which a create
sends in the path). This module turns those arguments into the body that is sent, so every caller
refuses the same records with the same message. It needs pydantic only, not Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from airflow_provider_crm.models.kustomer import KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.validation import validate_model

CUSTOMER_LINK = "customer_id"
"""The create argument that is not a body field: it picks ``POST /v1/customers/{id}/klasses/{name}``."""
CREATE_FIELDS: tuple[str, ...] = (*KObjectCreate.model_fields, CUSTOMER_LINK)
"""Every keyword a create (or an upsert) takes besides the klass."""
UPDATE_FIELDS: tuple[str, ...] = tuple(KObjectUpdate.model_fields)
"""Every keyword an update takes besides the klass and the KObject id."""


class KObjectContent(TypedDict, total=False):
    """The values every KObject write may carry; see :class:`~airflow_provider_crm.models.kustomer.KObjectCreate`."""

    custom: dict[str, Any] | None
    description: str | None
    tags: list[str] | None
    data: dict[str, Any] | None
    icon: str | None
    images: list[str] | None
    created_at: Any
    imported_at: Any


class KObjectUpsertFields(KObjectContent, total=False):
    """Keyword arguments of an upsert besides ``title`` (the external id is its own argument)."""

    customer_id: str | None
    company_id: str | None


class KObjectCreateFields(KObjectUpsertFields, total=False):
    """Keyword arguments of a create besides ``title``."""

    external_id: str | None


class KObjectUpdateFields(KObjectContent, total=False):
    """Keyword arguments of an update; every one optional."""

    title: str | None
    external_id: str | None
    rev: int | None
    parent: str | None


def given(fields: dict[str, Any]) -> dict[str, Any]:
    """The arguments a caller gave: ``None`` means "not given", so it is neither checked nor sent."""
    return {name: value for name, value in fields.items() if value is not None}


def create_label(klass_name: str, external_id: Any) -> str:
    """How messages name a create: its klass, and its external id when it has one."""
    label = f"Kustomer KObject create in klass {klass_name!r}"
    return f"{label} (externalId {external_id!r})" if external_id else label


@dataclass(frozen=True)
class KObjectCreateRequest:
    """A validated create of a KObject in ``klass_name``: the ``POST`` body and the customer link."""

    klass_name: str
    body: dict[str, Any]
    external_id: str | None = None
    customer_id: str | None = None

    @classmethod
    def build(cls, klass_name: str, *, customer_id: str | None = None, **fields: Any) -> KObjectCreateRequest:
        """Validate a record (``title`` required); raise :class:`~airflow_provider_crm.errors.CrmValidationError`."""
        external_id = fields.get("external_id")
        record = create_label(klass_name, external_id)
        body = validate_model(KObjectCreate, given(fields), record=record).to_body()
        return cls(klass_name, body, external_id, customer_id)

    @property
    def label(self) -> str:
        return create_label(self.klass_name, self.external_id)


@dataclass(frozen=True)
class KObjectUpdateRequest:
    """A validated update of KObject ``kobject_id`` in ``klass_name``: the ``PUT`` body, only given fields."""

    klass_name: str
    kobject_id: str
    body: dict[str, Any]

    @classmethod
    def build(cls, klass_name: str, kobject_id: str, **fields: Any) -> KObjectUpdateRequest:
        """Validate the fields given; raise :class:`~airflow_provider_crm.errors.CrmValidationError`."""
        record = update_label(klass_name, kobject_id)
        body = validate_model(KObjectUpdate, given(fields), record=record).to_body()
        return cls(klass_name, kobject_id, body)

    @property
    def rev(self) -> int | None:
        """The revision the caller last read, when the update is to be refused if the object moved on."""
        rev = self.body.get("rev")
        return rev if isinstance(rev, int) else None

    @property
    def label(self) -> str:
        return update_label(self.klass_name, self.kobject_id)


def update_label(klass_name: str, kobject_id: Any) -> str:
    return f"Kustomer KObject update {klass_name}/{kobject_id}"
