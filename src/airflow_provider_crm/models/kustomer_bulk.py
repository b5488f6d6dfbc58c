"""Kustomer bulk jobs: the body of a bulk submit, and the job and batch documents read back.

What Kustomer documents (developer.kustomer.com/docs/guides/bulk-operations,
/api/core-resources/get-bulk-operation-by-id, /api/core-resources/get-bulk-operation-batches, and
its OpenAPI as shipped in LarisLab/kustomer-client ``openapi.json``, ``paths./klasses/{name}/bulk``):

- ``POST /v1/klasses/{name}/bulk`` takes an array of create bodies, ``PUT`` an array of update
  bodies each with ``id``; at most 100 items (``maxItems: 100``). A customer-scoped create carries
  ``customer`` in its body. Each item may carry ``_clientRef``, a token of the caller's that comes
  back with that item's result. The answer is a job, ``{data: {type: "bulk", id, attributes}}``.
- ``GET /v1/bulk/{id}``: ``status`` ``queued`` → ``running`` → ``complete``, with
  ``batches.complete`` / ``batches.total``.
- ``GET /v1/bulk/{id}/batches``: per batch ``status`` (``queued``/``scheduled``/``complete``),
  ``objectIds``, ``successCount``, ``failureCount``, ``completedAt``, ``errors``, and ``results``
  (only when the items carried ``_clientRef``): one entry per item with its ``_clientRef`` and status.

What it does not pin down, read here either way: whether a document is wrapped in JSON:API
``data``/``attributes`` or flat (the guide's diagrams write it flat), the words of an item's status
beyond "created" (any status naming success, an id or an error decides), where an item's object id
travels (``id`` or ``objectId``) and how its error is written (a string, ``{code, message}``,
JSON:API ``{code, title, detail}``, or an entry of the batch's ``errors`` naming its ``_clientRef``).
An unknown status string is kept as it came. Needs neither Airflow nor the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models.kustomer_requests import KObjectCreateRequest, KObjectUpdateRequest

BULK_MAX_ITEMS = 100
"""Items per bulk request (Kustomer's ``maxItems: 100``); one request counts once against the org's limit."""
CLIENT_REF = "_clientRef"
"""The item field whose value comes back with that item's result."""
BULK_READ_ROLES = ("org.permission.bulk.read", "org.user.bulk.read")
"""Reading a job or its batches needs any one of these (the second is the legacy role)."""
JOB_COMPLETE = "complete"

Outcome = Literal["ok", "failed", "unknown"]
"""An item's fate: written, refused (with Kustomer's message), or not said (look it up)."""

_OK_WORDS = frozenset({"created", "updated", "deleted", "success", "succeeded", "successful", "ok", "complete"})
_FAILED_WORDS = frozenset({"failed", "failure", "error", "errored", "invalid", "rejected"})
_ID_KEYS = ("id", "objectId")


# -- the request ----------------------------------------------------------------------------------


def bulk_create_items(klass_name: str, creates: Mapping[str, KObjectCreateRequest]) -> list[dict[str, Any]]:
    """The body of ``POST /v1/klasses/{klass_name}/bulk``: each create's validated body with its ``_clientRef``.

    A create linked to a customer carries ``customer`` in its body (a single create sends it in the path).

    :param klass_name: The klass every create is for.
    :param creates: The validated creates by client ref (the caller's key for each record; unique by construction).
    :raises CrmValidationError: With no items, over :data:`BULK_MAX_ITEMS`, a blank client ref, or a create
        validated for another klass; nothing is sent.
    """
    _check_batch(klass_name, creates)
    items = []
    for client_ref, create in creates.items():
        _check_item(klass_name, client_ref, create.klass_name, create.label)
        customer = {"customer": create.customer_id} if create.customer_id is not None else {}
        items.append({**create.body, **customer, CLIENT_REF: client_ref})
    return items


def bulk_update_items(klass_name: str, updates: Mapping[str, KObjectUpdateRequest]) -> list[dict[str, Any]]:
    """The body of ``PUT /v1/klasses/{klass_name}/bulk``: each update's validated body with ``id`` and ``_clientRef``.

    :param klass_name: The klass every update is for.
    :param updates: The validated updates by client ref.
    :raises CrmValidationError: As :func:`bulk_create_items`.
    """
    _check_batch(klass_name, updates)
    items = []
    for client_ref, update in updates.items():
        _check_item(klass_name, client_ref, update.klass_name, update.label)
        items.append({"id": update.kobject_id, **update.body, CLIENT_REF: client_ref})
    return items


def _check_batch(klass_name: str, requests: Mapping[str, Any]) -> None:
    count = len(requests)
    if not 1 <= count <= BULK_MAX_ITEMS:
        raise CrmValidationError(
            f"Kustomer bulk job for klass {klass_name!r}: takes 1 to {BULK_MAX_ITEMS} items per request, got {count}",
            record=f"bulk job for klass {klass_name!r}",
        )


def _check_item(klass_name: str, client_ref: Any, request_klass: str, label: str) -> None:
    if not isinstance(client_ref, str) or not client_ref.strip():
        raise CrmValidationError(
            f"{label}: the client ref must be a non-empty string, got {client_ref!r}", record=label
        )
    if request_klass != klass_name:
        raise CrmValidationError(
            f"{label}: validated for klass {request_klass!r}, cannot go in a bulk job for klass {klass_name!r}",
            record=label,
        )


# -- what comes back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkJob:
    """A bulk job as ``POST``/``PUT .../bulk`` or ``GET /v1/bulk/{id}`` answers it.

    :param id: Kustomer's id of the job.
    :param status: ``queued``, ``running``, ``complete``, or whatever else Kustomer says, as it said it.
    :param batches_complete: Batches finished so far, when the answer says.
    :param batches_total: Batches in the job, when the answer says.
    :param completed: The job's ``completed`` flag, when present.
    """

    id: str
    status: str | None = None
    batches_complete: int | None = None
    batches_total: int | None = None
    completed: bool | None = None

    @property
    def done(self) -> bool:
        """Whether processing has finished (status ``complete`` or ``completed: true``); results can be read."""
        return self.status == JOB_COMPLETE or self.completed is True

    @classmethod
    def from_response(cls, body: Any) -> BulkJob:
        """Read ``{data: {type: "bulk", id, attributes: {status, batches: {complete, total}}}}`` or a flat form.

        :param body: The decoded JSON answer.
        :raises ValueError: When the answer names no job id.
        """
        data = body.get("data") if isinstance(body, dict) and isinstance(body.get("data"), dict) else body
        if not isinstance(data, dict) or not isinstance(data.get("id"), (str, int)) or data.get("id") == "":
            raise ValueError("the answer names no bulk job id")
        fields = _fields(data)
        batches = _mapping(fields.get("batches"))
        completed = fields.get("completed")
        return cls(
            id=str(data["id"]),
            status=_text(fields.get("status")),
            batches_complete=_count(batches.get("complete")),
            batches_total=_count(batches.get("total")),
            completed=completed if isinstance(completed, bool) else None,
        )


@dataclass(frozen=True)
class BulkItemResult:
    """One item's result in a batch, matched to the caller's record by ``client_ref``.

    :param client_ref: The ``_clientRef`` the item was sent with.
    :param outcome: ``ok`` (written), ``failed`` (Kustomer refused it; ``error`` says why) or ``unknown``.
    :param status: Kustomer's word for it, as given.
    :param object_id: The KObject's id, when given (a new object's id for a create).
    :param error: Kustomer's message for a refused item.
    :param code: Kustomer's error code for a refused item, when given.
    """

    client_ref: str
    outcome: Outcome
    status: str | None = None
    object_id: str | None = None
    error: str | None = None
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], batch_error: Mapping[str, Any] | None = None) -> BulkItemResult:
        """Read one ``results`` entry; ``batch_error`` is the batch's ``errors`` entry naming the same client ref.

        :param entry: The entry, carrying ``_clientRef``.
        :param batch_error: The batch's error for this item, used when the entry carries no message itself.
        """
        status = _text(entry.get("status"))
        object_id = next((_text(entry[key]) for key in _ID_KEYS if _text(entry.get(key))), None)
        message, code = _error_text(entry.get("error") or entry.get("errors"))
        if message is None and batch_error is not None:
            message, code = _error_text(batch_error)
        outcome = _outcome(status, object_id, message is not None)
        if outcome == "failed" and message is None:
            # A plain ``message`` is read as the reason only once the status says the item failed.
            message = _error_text(entry.get("message"))[0] or f"Kustomer reported the item as {status!r}"
        return cls(
            client_ref=str(entry[CLIENT_REF]),
            outcome=outcome,
            status=status,
            object_id=object_id,
            error=message,
            code=code,
        )


@dataclass(frozen=True)
class BulkBatch:
    """One batch of a job as ``GET /v1/bulk/{id}/batches`` answers it; counts are ``None`` when not given.

    :param status: ``queued``, ``scheduled``, ``complete``, or another word as given.
    :param object_ids: Ids of the objects written.
    :param success_count: Items written.
    :param failure_count: Items refused.
    :param completed_at: When the batch finished, as given.
    :param errors: The batch's ``errors`` entries, as given.
    :param results: Per-item results (only when the items carried ``_clientRef``).
    :param id: The batch's own id, when given.
    """

    status: str | None = None
    object_ids: tuple[str, ...] = ()
    success_count: int | None = None
    failure_count: int | None = None
    completed_at: str | None = None
    errors: tuple[Any, ...] = ()
    results: tuple[BulkItemResult, ...] = ()
    id: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> BulkBatch:
        """Read one batch, JSON:API (``{type, id, attributes}``) or flat.

        :param item: One element of the batches list.
        """
        fields = _fields(item)
        errors = tuple(_items(fields.get("errors")))
        errors_by_ref = {
            str(error[CLIENT_REF]): error for error in errors if isinstance(error, dict) and CLIENT_REF in error
        }
        entries = _items(fields.get("results"))
        results = tuple(
            BulkItemResult.from_entry(entry, errors_by_ref.get(str(entry[CLIENT_REF])))
            for entry in entries
            if isinstance(entry, dict) and entry.get(CLIENT_REF) is not None
        )
        object_ids = _items(fields.get("objectIds"))
        return cls(
            status=_text(fields.get("status")),
            object_ids=tuple(str(object_id) for object_id in object_ids if object_id is not None),
            success_count=_count(fields.get("successCount")),
            failure_count=_count(fields.get("failureCount")),
            completed_at=_text(fields.get("completedAt")),
            errors=errors,
            results=results,
            id=_text(item.get("id")),
        )


def batches_from_response(body: Any) -> list[BulkBatch]:
    """Every batch in a ``GET /v1/bulk/{id}/batches`` answer: ``{data: [...]}`` or a bare array.

    :param body: The decoded JSON answer.
    :raises ValueError: When the answer holds no list of batches.
    """
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValueError("the answer holds no list of batches")
    return [BulkBatch.from_item(item) for item in items if isinstance(item, dict)]


def results_by_client_ref(batches: Iterable[BulkBatch]) -> dict[str, BulkItemResult]:
    """Each item's result by its client ref, across a job's batches (the first one seen when repeated).

    :param batches: The job's batches, from :func:`batches_from_response`.
    """
    found: dict[str, BulkItemResult] = {}
    for batch in batches:
        for result in batch.results:
            found.setdefault(result.client_ref, result)
    return found


def _fields(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """A JSON:API resource's ``attributes`` with anything written beside them (flat documents have no attributes)."""
    attributes = item.get("attributes")
    return {**item, **attributes} if isinstance(attributes, dict) else item


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _outcome(status: str | None, object_id: str | None, has_error: bool) -> Outcome:
    word = (status or "").strip().lower()
    if has_error or word in _FAILED_WORDS:
        return "failed"
    if word in _OK_WORDS or (not word and object_id is not None):
        return "ok"
    return "unknown"


def _error_text(error: Any) -> tuple[str | None, str | None]:
    """Message and code from an error written as a string, an object, or a list of either."""
    if isinstance(error, list):
        pairs = [_error_text(item) for item in error]
        messages = [message for message, _ in pairs if message]
        code = next((code for _, code in pairs if code), None)
        return ("; ".join(messages) or None), code
    if isinstance(error, dict):
        message = error.get("detail") or error.get("message") or error.get("title")
        code = error.get("code")
        text = _text(message) or (_text(code) and f"refused ({code})")
        return text, _text(code)
    return _text(error), None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value)
    return text if text.strip() else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
