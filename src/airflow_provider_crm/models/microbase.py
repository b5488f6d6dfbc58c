"""MicroBase ``customer.update``: the arguments it accepts and the customer it returns.

MicroBase writes a field only when the sent value is truthy (``msg.x || current.x``), so an
empty string is silently ignored rather than clearing anything. Empty strings are therefore
refused here, with a message that says why; ``tags: []`` is truthy in JavaScript and does
replace the tags, so an empty list is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from airflow_provider_crm.models.body import RequestBody
from airflow_provider_crm.models.validation import validate_model

# Close to what the service's ``isemail`` check accepts: a dot-atom local part of RFC 5322 atext (isemail
# refuses its "specials", see skeggse/isemail lib/index.js), a dotted host name, at most 254 characters
# with at most 64 before the @. Quoted local parts and non-ASCII addresses, which isemail may accept, are
# refused here. Checked with ``fullmatch``: with ``match``, a ``$`` anchor also matches before a final newline.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
MAX_EMAIL_LENGTH, MAX_LOCAL_PART_LENGTH = 254, 64
EMPTY_REFUSAL = "must not be empty: MicroBase ignores empty values, so it cannot clear a field this way"
UPDATE_FIELDS = ("email", "first_name", "last_name", "status", "tags")
"""What ``customer.update`` can change, besides the ``id`` that names the customer."""


def customer_record(customer_id: Any) -> str:
    """How messages name the customer ``customer_id``."""
    return f"MicroBase customer {customer_id!r}"


def _not_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError(EMPTY_REFUSAL)
    return value


def cell_type(column: str) -> str | None:
    """How a text cell (a CSV column) of a ``customer.update`` record is read: ``tags`` is a list
    (a string array in the method's schema); the other arguments are strings. A type of
    :mod:`airflow_provider_crm.bulk.cells`, or ``None`` for text."""
    return "list" if column == "tags" else None


class CustomerUpdate(RequestBody):
    """Arguments of ``customer.update``; fields left ``None`` are not sent (and keep their value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1)]
    email: StrictStr | None = None
    first_name: StrictStr | None = Field(default=None, serialization_alias="firstName")
    last_name: StrictStr | None = Field(default=None, serialization_alias="lastName")
    status: Literal["ACTIVE", "INACTIVE"] | None = None
    tags: list[Annotated[StrictStr, Field(min_length=1)]] | None = None

    @field_validator("id", "email", "first_name", "last_name", mode="before")
    @classmethod
    def _refuse_empty(cls, value: Any) -> Any:
        return _not_empty(value)

    @field_validator("email")
    @classmethod
    def _email_format(cls, value: str | None) -> str | None:
        if value is not None and (
            not EMAIL_PATTERN.fullmatch(value)
            or len(value) > MAX_EMAIL_LENGTH
            or len(value.partition("@")[0]) > MAX_LOCAL_PART_LENGTH
        ):
            raise ValueError(f"{value[:100]!r} is not a valid email address")
        return value

    @model_validator(mode="after")
    def _something_to_update(self) -> CustomerUpdate:
        if not self.to_body().keys() - {"id"}:
            raise ValueError("nothing to update; give email, first_name, last_name, status or tags")
        return self


def customer_update(arguments: Mapping[str, Any]) -> CustomerUpdate:
    """``arguments`` (``id`` and some of :data:`UPDATE_FIELDS`) checked as ``customer.update`` takes them;
    raises :class:`~airflow_provider_crm.errors.CrmValidationError` naming the customer."""
    return validate_model(CustomerUpdate, dict(arguments), record=customer_record(arguments.get("id")))


class MicroBaseCustomer(BaseModel):
    """The customer as ``customer.update`` / ``customer.info`` return it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str
    email: str | None = None
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    status: str | None = None
    tags: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, body: Any) -> MicroBaseCustomer:
        customer = body.get("customer") if isinstance(body, dict) else None
        if not isinstance(customer, dict):
            raise ValueError("response has no customer object")
        return cls.model_validate({**customer, "raw": customer})
