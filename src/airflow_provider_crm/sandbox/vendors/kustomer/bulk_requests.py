"""The checks a bulk submit passes before Kustomer accepts it as a job.

Only the request as a whole is refused here: a body over the size cap (413), a body that is not
JSON, not an array, empty, or longer than 100 items (400; the OpenAPI's ``maxItems: 100`` of
``/klasses/{name}/bulk``, LarisLab/kustomer-client:openapi.json@1d997b7). Whether each item is a
valid KObject is decided later, per item, in the job's batch results. Kustomer's answer to a
too-long array is not shown in the material read; the 400 here is Kustomer's common error shape,
which its errors page documents for a body that breaks the request schema
(developer.kustomer.com/docs/concepts/errors). The size cap is the emulator's own setting (Kustomer does
not publish one). ``PUT ...?ids=a,b`` applies one object body to every listed id, as the
OpenAPI's bulk update describes.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.sandbox.messages import SandboxRequest, SandboxResponse, json_response
from airflow_provider_crm.sandbox.vendors.kustomer.bulk import MAX_ITEMS
from airflow_provider_crm.sandbox.vendors.kustomer.errors import body_too_large, simple_error
from airflow_provider_crm.sandbox.vendors.kustomer.writes import Refusal, read_json


def _refused(message: str) -> SandboxResponse:
    return json_response(400, simple_error("bad_request", message))


def _listed_ids(request: SandboxRequest) -> list[str] | None:
    raw = request.query_value("ids")
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def read_bulk_items(
    request: SandboxRequest, *, max_body_bytes: int, ids_query: bool
) -> tuple[list[Any], list[str]] | SandboxResponse:
    """The submitted items and the ``?ids=`` list (empty without it), or the refusal of the whole request.

    :param request: the bulk submit.
    :param max_body_bytes: the largest body accepted; a larger one is answered 413.
    :param ids_query: whether ``?ids=`` is understood (bulk updates).
    """
    if len(request.body) > max_body_bytes:
        return json_response(413, body_too_large(max_body_bytes))
    body = read_json(request)
    if isinstance(body, Refusal):
        return body.response()
    ids = _listed_ids(request) if ids_query else None
    if ids is not None:
        if not ids:
            return _refused("ids must list at least one KObject id")
        if not isinstance(body, dict):
            return _refused("With ?ids= the body must be one JSON object, applied to every listed KObject")
        items: list[Any] = [{**body, "id": kobject_id} for kobject_id in ids]
    elif isinstance(body, list):
        items = body
    else:
        return _refused("A bulk request body must be a JSON array of objects")
    if not items:
        return _refused("A bulk request needs at least one item")
    if len(items) > MAX_ITEMS:
        return _refused(f"A bulk request takes at most {MAX_ITEMS} items; got {len(items)}")
    return items, ids or []
