"""HubSpot's error documents: the ``Error`` body, batch ``StandardError`` entries, 429s, gateway pages.

Shapes follow the orders v3 spec (``Error``: ``category``, ``correlationId``, ``message``,
optional ``context``/``errors``/``links``) plus the ``"status": "error"`` HubSpot adds. The
correlation id is the sandbox request id, so the body matches ``x-hubspot-correlation-id``.
Assumptions: batch entries carry ``"status": "error"`` as HubSpot's answers do (the spec
describes the field as the HTTP status); the 429 body shape is the documented one from
third-party notes; gateway errors come as Cloudflare-like HTML pages.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_crm.sandbox.messages import SandboxResponse, json_response
from airflow_provider_crm.sandbox.vendors.hubspot.properties import PropertyError

Context = Mapping[str, Sequence[str]]

VALIDATION_ERROR = "VALIDATION_ERROR"
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
CONFLICT = "CONFLICT"
INVALID_AUTHENTICATION = "INVALID_AUTHENTICATION"
EXPIRED_AUTHENTICATION = "EXPIRED_AUTHENTICATION"
MISSING_SCOPES = "MISSING_SCOPES"
INTERNAL_ERROR = "INTERNAL_ERROR"

STATUS_CATEGORIES = {
    400: VALIDATION_ERROR,
    401: INVALID_AUTHENTICATION,
    403: MISSING_SCOPES,
    404: OBJECT_NOT_FOUND,
    409: CONFLICT,
    414: "URI_TOO_LONG",
    423: "LOCKED",
    429: "RATE_LIMITS",
    477: "MIGRATION_IN_PROGRESS",
}

TEN_SECONDLY_ROLLING = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"

GATEWAY_TITLES = {
    502: "Bad gateway",
    504: "Gateway time-out",
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}

HTML_CONTENT_TYPE = "text/html; charset=UTF-8"


def category_for(status: int) -> str:
    """The ``category`` HubSpot uses for an HTTP status (``INTERNAL_ERROR`` for other 5xx)."""
    return STATUS_CATEGORIES.get(status, INTERNAL_ERROR if status >= 500 else "BAD_REQUEST")


def error_body(
    correlation_id: str,
    category: str,
    message: str,
    *,
    context: Context | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An ``Error`` document; optional parts appear only when given."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id,
        "category": category,
    }
    if errors is not None:
        body["errors"] = [dict(error) for error in errors]
    if context is not None:
        body["context"] = {key: list(values) for key, values in context.items()}
    if links is not None:
        body["links"] = dict(links)
    return body


def error_response(
    status: int,
    correlation_id: str,
    message: str,
    *,
    category: str | None = None,
    context: Context | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    links: Mapping[str, str] | None = None,
) -> SandboxResponse:
    """A JSON error answer; ``category`` defaults to the status's usual one."""
    body = error_body(
        correlation_id,
        category or category_for(status),
        message,
        context=context,
        errors=errors,
        links=links,
    )
    return json_response(status, body)


def property_errors_message(errors: Sequence[PropertyError]) -> str:
    """HubSpot's wording: ``Property values were not valid: [<validationResults JSON>]``."""
    results = json.dumps([error.validation_result() for error in errors], separators=(",", ":"))
    return f"Property values were not valid: {results}"


def property_errors_parts(errors: Sequence[PropertyError]) -> dict[str, Any]:
    """Message, ``context.propertyName`` and ``errors[]`` describing invalid property values."""
    names = list(dict.fromkeys(error.name for error in errors))
    return {
        "message": property_errors_message(errors),
        "context": {"propertyName": names},
        "errors": [error.detail() for error in errors],
    }


def standard_error(
    category: str,
    message: str,
    *,
    context: Context | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    trace_id: str | None = None,
) -> dict[str, Any]:
    """One batch ``StandardError``; ``id`` is the input's ``objectWriteTraceId`` when it had one."""
    entry: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": {key: list(values) for key, values in (context or {}).items()},
        "errors": [dict(error) for error in errors],
        "links": {},
    }
    if trace_id is not None:
        entry["id"] = trace_id
    return entry


def rate_limit_body(correlation_id: str, policy: str) -> dict[str, Any]:
    """The 429 document; the message names the policy in lower case, as HubSpot's does.

    Shape as in HubSpot's usage-guidelines example (quoted on community.hubspot.com), which also
    carries a ``requestId`` of its own.
    """
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id,
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


def gateway_page(status: int, ray_id: str | None = None) -> tuple[str, str]:
    """A Cloudflare-like error page for a gateway status and its ray id: ``(html, ray_id)``."""
    ray_id = ray_id or os.urandom(8).hex()
    title = GATEWAY_TITLES.get(status, "Error")
    html = (
        "<!DOCTYPE html>\n"
        f'<html lang="en-US"><head><title>api.hubapi.com | {status}: {title}</title></head>\n'
        f"<body><h1>{title}</h1><p>Error code {status}</p>"
        f"<p>Cloudflare Ray ID: <strong>{ray_id}</strong></p></body></html>\n"
    )
    return html, ray_id
