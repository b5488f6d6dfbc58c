"""Batch update and upsert: apply each input on its own and report the failures per input.

Inputs that succeed are stored even when others fail; the answer is 200 when none failed and
207 otherwise, also when every input failed (then ``results`` is empty). Each failure becomes
one ``StandardError`` whose ``id`` is the input's ``objectWriteTraceId``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_crm.sandbox.hubspot_errors import standard_error
from airflow_provider_crm.sandbox.hubspot_render import cleared_names, render_order
from airflow_provider_crm.sandbox.hubspot_validation import BatchInput
from airflow_provider_crm.sandbox.hubspot_writes import OrderWrites, WriteError
from airflow_provider_crm.sandbox.ids import utc_now_iso


def _apply(writes: OrderWrites, item: BatchInput, *, upsert: bool) -> tuple[dict[str, Any], bool | None] | WriteError:
    """One input: ``(record, new)`` (``new`` only for upserts) or why it failed."""
    if not upsert:
        updated = writes.update(item.id, item.id_property, item.properties)
        return updated if isinstance(updated, WriteError) else (updated, None)
    assert item.id_property is not None  # parse_batch requires it for upserts
    upserted = writes.upsert(item.id, item.id_property, item.properties)
    return upserted if isinstance(upserted, WriteError) else (upserted[0], upserted[1])


def run_batch(
    writes: OrderWrites, inputs: Sequence[BatchInput], *, upsert: bool, started: str
) -> tuple[int, dict[str, Any]]:
    """Apply the inputs in order; returns the status (200 or 207) and the batch response body."""
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        outcome = _apply(writes, item, upsert=upsert)
        if isinstance(outcome, WriteError):
            errors.append(
                standard_error(
                    outcome.category,
                    outcome.message,
                    context=outcome.context,
                    errors=outcome.errors,
                    trace_id=item.trace_id,
                )
            )
            continue
        record, new = outcome
        rendered = render_order(record, cleared=cleared_names(item.properties), trace_id=item.trace_id)
        if new is not None:
            rendered["new"] = new
        results.append(rendered)
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": utc_now_iso(),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return (207 if errors else 200), body
