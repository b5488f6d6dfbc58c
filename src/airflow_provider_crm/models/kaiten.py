"""Kaiten customers: the full-replacement PUT body and the customer document.

Patterns come from Kaiten's OpenAPI contract: slugs are 2-100 characters of ``[a-z0-9-]``
starting and ending alphanumeric; domains are lower case with at least one dot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models.body import RequestBody
from airflow_provider_crm.models.validation import validate_model

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
DOMAIN_PATTERN = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$"

Slug = Annotated[StrictStr, Field(min_length=2, max_length=100, pattern=SLUG_PATTERN)]
Domain = Annotated[StrictStr, Field(pattern=DOMAIN_PATTERN)]

REPLACED_FIELDS = ("name", "external_customer_id", "domain")
"""The customer fields a PUT carries, and so the fields a change may name."""
CLEARABLE_FIELDS = ("external_customer_id", "domain")
"""The fields a change may clear (set to ``None``); Kaiten requires a ``name``."""
_NAME_STAND_IN = "placeholder"


def customer_record(slug: Any) -> str:
    """How messages name the customer ``slug``."""
    return f"Kaiten customer {slug!r}"


class CustomerSlug(BaseModel):
    """A slug to address a customer by, checked before it goes into a path."""

    model_config = ConfigDict(extra="forbid")

    customer_slug: Slug


class CustomerReplacement(RequestBody):
    """Body of ``PUT /customers/{slug}``: every field it does not carry is cleared by Kaiten."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[StrictStr, Field(min_length=1)]
    external_customer_id: Annotated[StrictStr, Field(min_length=1)] | None = Field(
        default=None, serialization_alias="externalCustomerId"
    )
    domain: Domain | None = None


def validate_changes(slug: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check a partial change set (some of :data:`REPLACED_FIELDS`) before the customer is read.

    The PUT body requires ``name``; when a change leaves it out, a stand-in name lets the other
    fields be checked as the body will check them, so a bad value fails before any request.
    """
    record = customer_record(slug)
    if not changes:
        raise CrmValidationError(
            f"{record}: nothing to update; give name, external_customer_id or domain", record=record
        )
    validate_model(CustomerReplacement, {"name": _NAME_STAND_IN, **changes}, record=record)
    return dict(changes)


class KaitenCustomer(BaseModel):
    """The customer fields callers use; ``raw`` keeps the whole document."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    slug: str
    name: str
    id: str | None = None
    external_customer_id: str | None = Field(default=None, alias="externalCustomerId")
    domain: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    def replaced_fields(self) -> dict[str, Any]:
        """The values a full-replacement PUT would carry for this customer as it is."""
        return {name: getattr(self, name) for name in REPLACED_FIELDS}

    @classmethod
    def from_document(cls, body: Any, slug: str | None = None) -> KaitenCustomer:
        """Parse a ``Customer`` document; ``slug`` stands in when the document leaves it out.

        The contract lists ``slug`` as optional (only ``id``, ``name`` and the audit fields are
        required), so a customer read by its slug keeps that slug even if the answer omits it.
        """
        if not isinstance(body, dict):
            raise ValueError("customer document is not an object")
        fields = {**body, "raw": body}
        if slug is not None and fields.get("slug") is None:
            fields["slug"] = slug
        return cls.model_validate(fields)
