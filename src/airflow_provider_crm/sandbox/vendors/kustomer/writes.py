"""Why Kustomer refuses a KObject write, decided once for the single endpoints and for bulk jobs.

A single create or update answers a refusal as its HTTP error; a bulk job records the same
refusal against the item in its batch results (Kustomer's batches carry "detailed error
information for failed items", developer.kustomer.com/api/core-resources/get-bulk-operation-batches),
so an item of a bulk job passes or fails exactly as it would have on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_crm.sandbox.messages import InvalidJson, SandboxRequest, SandboxResponse, json_response
from airflow_provider_crm.sandbox.vendors.kustomer.errors import field_errors, item_error, jsonapi_error, simple_error
from airflow_provider_crm.sandbox.vendors.kustomer.state import KustomerState
from airflow_provider_crm.sandbox.vendors.kustomer.validation import FieldError, validate_create, validate_update


@dataclass(frozen=True)
class Refusal:
    """A refused write: the status and error document a single write answers, and its one-line summary.

    ``detail`` names every problem and ``pointer`` the first offending field, so one bulk item's
    error (:meth:`item_error`) says as much as the single endpoint's whole document.
    """

    status: int
    document: dict[str, Any]
    detail: str
    pointer: str | None = None

    def response(self) -> SandboxResponse:
        """The single endpoint's answer."""
        return json_response(self.status, self.document)

    def item_error(self) -> dict[str, Any]:
        """The error a bulk job records for the item (Kustomer's common error shape, with the status)."""
        return item_error(self.status, self.detail, pointer=self.pointer)


def _jsonapi_refusal(status: int, detail: str, pointer: str | None = None) -> Refusal:
    return Refusal(status, jsonapi_error(status, detail, pointer=pointer), detail, pointer)


def invalid(errors: Sequence[FieldError]) -> Refusal:
    """400 naming each invalid attribute (Kustomer's common error shape, one entry per attribute).

    :param errors: the problems found, at least one.
    """
    return Refusal(400, field_errors(errors), "; ".join(error.message for error in errors), errors[0].pointer)


def read_json(request: SandboxRequest) -> Any:
    """The request's parsed JSON body, or a :class:`Refusal` (400) when it is not valid JSON.

    :param request: the write request.
    """
    try:
        return request.json()
    except InvalidJson as exc:
        message = f"Invalid JSON in request body: {exc}"
        return Refusal(400, simple_error("bad_request", message), message)


def not_an_object(what: str) -> Refusal:
    """400 for a body (or bulk item) that is not a JSON object.

    :param what: what is not an object, as the message names it ("Request body", "A bulk item").
    """
    message = f"{what} must be a JSON object"
    return Refusal(400, simple_error("bad_request", message), message)


def missing(klass: str, what: str) -> Refusal:
    """404 for a KObject that does not exist.

    :param klass: the klass looked in.
    :param what: how the KObject was named: its id, or ``with externalId ...``.
    """
    return _jsonapi_refusal(404, f"KObject {what} not found in klass {klass!r}")


def conflict(klass: str, external_id: str) -> Refusal:
    """409 for an externalId another KObject of the klass already holds.

    :param klass: the klass.
    :param external_id: the externalId asked for.
    """
    return _jsonapi_refusal(409, f"externalId {external_id!r} already exists in klass {klass!r}", "/externalId")


def stale(klass: str, kobject_id: str, sent: Any, current: int) -> Refusal:
    """409 for an update whose ``rev`` is not the stored one (optimistic locking).

    :param klass: the klass.
    :param kobject_id: the KObject updated.
    :param sent: the ``rev`` the update carried.
    :param current: the stored ``rev``.
    """
    detail = (
        f"rev {sent!r} is stale: KObject {kobject_id!r} in klass {klass!r} is at rev {current}; "
        "read it again and resend with the current rev"
    )
    return _jsonapi_refusal(409, detail, "/rev")


def create_refusal(state: KustomerState, klass: str, body: Any) -> Refusal | None:
    """Why a create body cannot be stored now (invalid, or its externalId taken), or ``None``.

    :param state: the stored KObjects, for externalId uniqueness.
    :param klass: the klass name from the path.
    :param body: the parsed create body.
    """
    if not isinstance(body, Mapping):
        return not_an_object("Request body")
    problems = validate_create(body)
    if problems:
        return invalid(problems)
    external_id = body.get("externalId")
    if external_id is not None and state.external_id_owner(klass, external_id) is not None:
        return conflict(klass, external_id)
    return None


def update_refusal(state: KustomerState, klass: str, kobject_id: str, body: Any) -> Refusal | None:
    """Why an update body cannot be applied now (invalid, unknown object, stale rev, externalId taken), or ``None``.

    :param state: the stored KObjects.
    :param klass: the klass name from the path.
    :param kobject_id: the id of the KObject to update.
    :param body: the parsed update body (without the bulk item's ``id``).
    """
    if not isinstance(body, Mapping):
        return not_an_object("Request body")
    problems = validate_update(body)
    if problems:
        return invalid(problems)
    stored = state.get(klass, kobject_id)
    if stored is None:
        return missing(klass, repr(kobject_id))
    if "rev" in body and body["rev"] != stored["rev"]:
        return stale(klass, kobject_id, body["rev"], stored["rev"])
    external_id = body.get("externalId")
    if external_id is not None:
        owner = state.external_id_owner(klass, external_id)
        if owner is not None and owner != kobject_id:
            return conflict(klass, external_id)
    return None
