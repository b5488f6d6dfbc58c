"""Kustomer's two documented error documents.

JSON:API ``{"errors": [{"status", "code", "title", "detail"}]}`` answers 401, 403, 404 for a
missing object, 409, 429 and 5xx; the common ``{"errors": [{"code", "message", "meta"}]}``
answers 400 and an unknown route. ``status`` is a string (``"404"``), as Kustomer's OpenAPI types it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_crm.sandbox.vendors.kustomer.validation import FieldError

_STATUS_TITLES = {
    400: ("bad_request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not Found"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload Too Large"),
    429: ("too_many_requests", "Too Many Requests"),
    500: ("internal_server_error", "Internal Server Error"),
    502: ("bad_gateway", "Bad Gateway"),
    503: ("service_unavailable", "Service Unavailable"),
    504: ("gateway_timeout", "Gateway Timeout"),
}


def jsonapi_error(status: int, detail: str, *, pointer: str | None = None) -> dict[str, Any]:
    """A JSON:API error document: ``{"errors": [{"status", "code", "title", "detail"}]}``.

    ``status`` is the HTTP status as a string (``"404"``): Kustomer's OpenAPI types it so.
    """
    code, title = _STATUS_TITLES.get(status, ("error", "Error"))
    error: dict[str, Any] = {"status": str(status), "code": code, "title": title, "detail": detail}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return {"errors": [error]}


def item_error(status: int, message: str, *, pointer: str | None = None) -> dict[str, Any]:
    """One refused item of a bulk job: the common shape ``{"code", "message", "meta"}`` plus the HTTP ``status``.

    :param status: the status the single endpoint would have answered for the item (400, 404, 409).
    :param message: what is wrong, in words.
    :param pointer: the JSON pointer of the offending field, when there is one (``meta.pointer``).
    """
    code, _ = _STATUS_TITLES.get(status, ("error", "Error"))
    return {"status": str(status), "code": code, "message": message, "meta": {"pointer": pointer} if pointer else {}}


def body_too_large(limit: int) -> dict[str, Any]:
    """The JSON:API 413 document for a request body above ``limit`` bytes.

    :param limit: the largest body accepted, in bytes.
    """
    return jsonapi_error(413, f"Request body exceeds {limit} bytes")


def simple_error(code: str, message: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kustomer's common error document: ``{"errors": [{"code", "message", "meta"}]}``."""
    return {"errors": [{"code": code, "message": message, "meta": meta or {}}]}


def field_errors(errors: Sequence[FieldError]) -> dict[str, Any]:
    """The 400 document for invalid attributes: one common-shape error per attribute, with its pointer."""
    return {
        "errors": [
            {
                "code": "bad_request",
                "message": error.message,
                "meta": {"attribute": error.attribute, "pointer": error.pointer},
            }
            for error in errors
        ]
    }
