"""The JSON documents of Kustomer's bulk endpoints, rendered from a :class:`~.bulk.BulkJob`.

The job document is the one of Kustomer's OpenAPI (LarisLab/kustomer-client:openapi.json@1d997b7,
``paths./klasses/{name}/bulk`` 201 and 200 examples): ``data.type`` ``"bulk"``, ``attributes`` with
``ids``, ``context``, ``status``, ``v2``, ``payload.api`` (the request echoed), ``createdAt``,
``updatedAt``, ``completed``, ``relationships.org`` / ``createdBy`` and ``links.self``
``/v1/bulk/{id}``; the submit answer and ``GET /v1/bulk/{id}`` render the same resource, which
also carries ``batches.complete`` / ``batches.total`` (get-bulk-operation-by-id). The envelope of
``GET /v1/bulk/{id}/batches`` is not shown in the material read: here ``{"data": [...]}`` of
JSON:API resources of ``type`` ``"bulk_batch"`` whose ``attributes`` hold the documented batch fields,
as in tests/contracts/kustomer/bulk-batches-200.json.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.sandbox.vendors.kustomer.bulk import CLIENT_REF, COMPLETE, FAILED, Batch, BulkJob, ItemResult
from airflow_provider_crm.sandbox.vendors.kustomer.resources import relationship


def job_document(job: BulkJob, now: float, user: dict[str, Any]) -> dict[str, Any]:
    """The bulk job resource (``{"data": {"type": "bulk", ...}}``) at clock time ``now``.

    :param job: the job.
    :param now: the app's clock reading.
    :param user: the API key's user as the job's ``payload.api.user`` (``id``, ``org`` and the rest).
    """
    status = job.status(now)
    return {
        "data": {
            "type": "bulk",
            "id": job.id,
            "attributes": {
                "ids": list(job.ids),
                "context": job.operation.context,
                "status": status,
                "v2": True,
                "payload": {
                    "api": {
                        "data": job.items,
                        "path": job.path,
                        "user": user,
                        "requestId": job.request_id,
                        "service": "sobjects",
                        "method": job.method,
                    }
                },
                "createdAt": job.wall(job.submitted),
                "updatedAt": job.wall(job.updated(now)),
                "completed": status == COMPLETE,
                "batches": {"complete": job.complete_batches, "total": len(job.batches)},
            },
            "relationships": {
                "org": relationship("org", "orgs", user["org"]),
                "createdBy": relationship("user", "users", user["id"]),
            },
            "links": {"self": f"/v1/bulk/{job.id}"},
        }
    }


def batches_document(job: BulkJob, now: float) -> dict[str, Any]:
    """``GET /v1/bulk/{id}/batches``: every batch of the job, in order.

    :param job: the job.
    :param now: the app's clock reading.
    """
    return {"data": [_batch(job, batch, now) for batch in job.batches]}


def _batch(job: BulkJob, batch: Batch, now: float) -> dict[str, Any]:
    results = batch.results or []
    written = [result.object_id for result in results if result.object_id is not None]
    errors = [_batch_error(result, batch.start + offset) for offset, result in enumerate(results) if result.error]
    attributes: dict[str, Any] = {
        "status": job.batch_status(batch, now),
        "objectIds": written,
        "successCount": len(written),
        "failureCount": len(errors),
        "completedAt": job.wall(batch.due) if batch.complete else None,
        "errors": errors,
    }
    if job.has_client_refs:
        attributes["results"] = [
            {CLIENT_REF: result.client_ref, "status": job.operation.done, "id": result.object_id}
            if result.error is None
            else {CLIENT_REF: result.client_ref, "status": FAILED, "error": result.error}
            for result in results
        ]
    return {"type": "bulk_batch", "id": batch.id, "attributes": attributes}


def _batch_error(result: ItemResult, index: int) -> dict[str, Any]:
    """A refused item in the batch's ``errors``: its error, its position in the request, and its ``_clientRef``."""
    error = dict(result.error or {})
    error["meta"] = {**error.get("meta", {}), "index": index}
    return {CLIENT_REF: result.client_ref, **error} if result.client_ref is not None else error


def job_summary(job: BulkJob, now: float) -> dict[str, Any]:
    """A compact view of a job for the sandbox's state snapshot (no items, no results).

    :param job: the job.
    :param now: the app's clock reading.
    """
    results = [result for batch in job.batches for result in batch.results or []]
    failures = sum(result.error is not None for result in results)
    return {
        "id": job.id,
        "klass": job.klass,
        "operation": job.operation.value,
        "status": job.status(now),
        "items": len(job.items),
        "batches": {"complete": job.complete_batches, "total": len(job.batches)},
        "successCount": len(results) - failures,
        "failureCount": failures,
        "createdAt": job.wall(job.submitted),
    }
