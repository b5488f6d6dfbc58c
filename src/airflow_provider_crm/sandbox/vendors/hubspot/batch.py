"""Batch update, upsert and read, answered the way HubSpot answers them.

A batch is validated before anything is applied: an input with an invalid, unknown or read-only
property value, or a bad ``idProperty``, makes the whole batch a 400 ``VALIDATION_ERROR`` whose
message starts ``Property values were not valid:`` (HubSpot's wording for invalid values, from its
changelog; that the whole batch fails is reported by integrations, not by HubSpot's docs). A record
named twice is refused earlier, while the body is parsed.

Inputs that pass are applied one by one; the answer is 200 when all were, else 207 (also when none
was). How a 207 reports failures is not documented, so :data:`ERROR_STYLES` offers the forms a
client must cope with; the default, ``grouped``, names every missing record in one
``OBJECT_NOT_FOUND`` error's ``context.ids`` (as HubSpot's batch read answers, per a HubSpot
community thread) and gives other failures the input's trace id as ``id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_crm.sandbox.common.ids import utc_now_iso
from airflow_provider_crm.sandbox.vendors.hubspot.errors import (
    OBJECT_NOT_FOUND,
    VALIDATION_ERROR,
    property_errors_message,
    standard_error,
)
from airflow_provider_crm.sandbox.vendors.hubspot.properties import PropertyError, check_properties
from airflow_provider_crm.sandbox.vendors.hubspot.render import cleared_names, render_order
from airflow_provider_crm.sandbox.vendors.hubspot.validation import BatchInput
from airflow_provider_crm.sandbox.vendors.hubspot.writes import OrderWrites, WriteError

GROUPED = "grouped"
ERROR_STYLES = (GROUPED, "trace_id", "context_trace", "nested_trace", "bare", "silent")
"""How a 207 reports failed inputs:

- ``grouped``: missing records share one ``OBJECT_NOT_FOUND`` error (``context.ids``, no ``id``);
  other failures carry the input's trace id as ``id``;
- ``trace_id``: one error per input, ``id`` = its trace id (missing ones also in ``context.ids``);
- ``context_trace``: one error per input, trace id in ``context.objectWriteTraceId`` (a list);
- ``nested_trace``: one error per input, trace id in ``errors[0].context.objectWriteTraceId``;
- ``bare``: one error per input with only ``status``, ``category`` and ``message``;
- ``silent``: failed inputs are left out of ``results`` and no error names them.
"""

NOT_FOUND_MESSAGE = "Could not get some ORDER objects, they may be deleted or not exist. Check that ids are valid."


def validate_batch(writes: OrderWrites, inputs: Sequence[BatchInput], *, upsert: bool) -> WriteError | None:
    """The 400 that refuses the whole batch, or ``None`` when every input may be applied."""
    property_errors: list[PropertyError] = []
    for item in inputs:
        error = writes.check_id_property(item.id_property, writable=upsert)
        if error is not None:
            return error
        property_errors.extend(check_properties(writes.catalogue(), item.properties))
    if not property_errors:
        return None
    names = list(dict.fromkeys(error.name for error in property_errors))
    return WriteError(
        400,
        VALIDATION_ERROR,
        property_errors_message(property_errors),
        {"propertyName": names},
        [error.detail() for error in property_errors],
    )


def _apply(writes: OrderWrites, item: BatchInput, *, upsert: bool) -> tuple[dict[str, Any], bool | None] | WriteError:
    """One input: ``(record, new)`` (``new`` only for upserts) or why it failed."""
    if not upsert:
        updated = writes.update(item.id, item.id_property, item.properties)
        return updated if isinstance(updated, WriteError) else (updated, None)
    assert item.id_property is not None  # parse_batch requires it for upserts
    upserted = writes.upsert(item.id, item.id_property, item.properties)
    return upserted if isinstance(upserted, WriteError) else (upserted[0], upserted[1])


def _error_entry(failure: WriteError, trace_id: str | None, style: str) -> dict[str, Any]:
    if style == "bare":
        return {"status": "error", "category": failure.category, "message": failure.message}
    context: dict[str, list[str]] = dict(failure.context)
    errors = [dict(error) for error in failure.errors]
    entry_id = trace_id if style in (GROUPED, "trace_id") else None
    if trace_id is not None and style == "context_trace":
        context["objectWriteTraceId"] = [trace_id]
    if trace_id is not None and style == "nested_trace":
        errors = [{"message": failure.message, "context": {"objectWriteTraceId": trace_id}}, *errors]
    return standard_error(failure.category, failure.message, context=context, errors=errors, trace_id=entry_id)


def batch_errors(failures: Sequence[tuple[BatchInput, WriteError]], style: str) -> list[dict[str, Any]]:
    """The ``errors[]`` of a 207 in the given style."""
    if style == "silent":
        return []
    entries: list[dict[str, Any]] = []
    missing: list[str] = []
    for item, failure in failures:
        if style == GROUPED and failure.category == OBJECT_NOT_FOUND:
            missing.append(item.id)
            continue
        entries.append(_error_entry(failure, item.trace_id, style))
    if missing:
        entries.insert(0, standard_error(OBJECT_NOT_FOUND, NOT_FOUND_MESSAGE, context={"ids": missing}))
    return entries


def run_batch(
    writes: OrderWrites, inputs: Sequence[BatchInput], *, upsert: bool, started: str, style: str = GROUPED
) -> tuple[int, dict[str, Any]]:
    """Apply the inputs in order; returns the status (200 or 207) and the batch response body."""
    results: list[dict[str, Any]] = []
    failures: list[tuple[BatchInput, WriteError]] = []
    for item in inputs:
        outcome = _apply(writes, item, upsert=upsert)
        if isinstance(outcome, WriteError):
            failures.append((item, outcome))
            continue
        record, new = outcome
        rendered = render_order(record, cleared=cleared_names(item.properties), trace_id=item.trace_id)
        if new is not None:
            rendered["new"] = new
        results.append(rendered)
    body = _batch_body(results, started)
    if failures:
        errors = batch_errors(failures, style)
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return (207 if failures else 200), body


def read_batch(
    writes: OrderWrites, ids: Sequence[str], id_property: str | None, requested: Sequence[str], *, started: str
) -> tuple[int, dict[str, Any]]:
    """Batch read: the orders found (each once), and one ``OBJECT_NOT_FOUND`` naming the rest."""
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    missing: list[str] = []
    for value in ids:
        resolved = writes.resolve(value, id_property)
        if isinstance(resolved, WriteError):
            missing.append(value)
            continue
        if resolved in seen:
            continue
        seen.add(resolved)
        record = writes.record(resolved)
        if record is not None:
            results.append(render_order(record, requested=[*requested, *([id_property] if id_property else [])]))
    body = _batch_body(results, started)
    if not missing:
        return 200, body
    body["numErrors"] = 1
    body["errors"] = [standard_error(OBJECT_NOT_FOUND, NOT_FOUND_MESSAGE, context={"ids": missing})]
    return 207, body


def _batch_body(results: list[dict[str, Any]], started: str) -> dict[str, Any]:
    """``BatchResponse...``: the spec's required fields plus ``requestedAt`` and ``links``, as the docs show."""
    return {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": utc_now_iso(),
        "requestedAt": started,
        "links": {},
    }


def error_style(key: str, value: Any) -> str:
    """Check a ``batch_errors`` setting."""
    if value not in ERROR_STYLES:
        raise ValueError(f"{key} must be one of {', '.join(ERROR_STYLES)}, not {value!r}")
    return str(value)
