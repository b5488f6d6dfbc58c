"""Kaiten's error documents: RFC 9457 ``application/problem+json`` with Kaiten's extensions.

Taken from the vendor's server (github.com/kaitencloud/kaiten ``api/pkg/apierrors/problem.go``,
``errors.go`` and ``api/internal/infrastructure/http/huma/error.go``) and its published ``Problem``
schema (kaitencloud/sdk-python ``openapi/openapi.yaml``). Every member is optional on the wire;
Kaiten sends ``type`` (an RFC section URI chosen by status), ``title`` (the status text),
``status``, ``detail``, ``instance`` (the request path) and ``code`` (the stable machine code
clients should branch on). ``errors[]`` of ``{message, location, value}`` only comes with request
validation, and ``errorId`` only when the server withheld an unexpected failure's cause (a 500).
Codes are the vendor's where its source names them; ``Route.*`` and ``Request.TooLarge`` are the
emulator's own (the vendor's answer for those is not documented).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from airflow_provider_crm.sandbox.messages import SandboxResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Request validation (huma): 400 for a body that cannot be read, 422 for one that breaks the schema.
MALFORMED = "VALIDATION"
VALIDATION_FAILED = "UNPROCESSABLE"
VALIDATION_DETAIL = "validation failed"

# Authentication and scopes (api/internal/platform/auth/auth.go, api/pkg/scope/scope.go).
MISSING_AUTHORIZATION = "Auth.MissingAuthorizationHeader"
UNKNOWN_AUTHORIZATION = "Auth.UnknownAuthorizationHeader"
INVALID_TOKEN = "Auth.InvalidToken"
MISSING_SCOPE = "Auth.MissingScope"

# Customer use cases (api/internal/modules/customers/*).
CUSTOMER_NOT_FOUND = "Customer.NotFound"
UPDATE_NOT_FOUND = "UpdateCustomer.NotFound"
DELETE_NOT_FOUND = "DeleteCustomer.NotFound"
SLUG_NOT_RENAMEABLE = "UpdateCustomer.SlugNotRenameable"
INTEGRATIONS_NOT_SETTABLE = "UpdateCustomer.IntegrationsNotSettable"
SLUG_TAKEN = "CreateCustomer.SlugConflict"
LIMIT_REACHED = "CreateCustomer.EntitlementLimitReached"

# A 429 whose error names no code of its own falls back to its kind's name.
RATE_LIMITED = "TOO_MANY_REQUESTS"

# The emulator's own.
ROUTE_NOT_FOUND = "Route.NotFound"
METHOD_NOT_ALLOWED = "Route.MethodNotAllowed"
PAYLOAD_TOO_LARGE = "Request.TooLarge"

_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    409: "https://tools.ietf.org/html/rfc7231#section-6.5.8",
    422: "https://tools.ietf.org/html/rfc4918#section-11.2",
    503: "https://tools.ietf.org/html/rfc7231#section-6.6.4",
}
_TYPE_INTERNAL = "https://tools.ietf.org/html/rfc7231#section-6.6.1"

# The kind names Kaiten uses as the code of an answer that has a status but no code of its own.
_KIND_CODES = {
    400: "VALIDATION",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "UNPROCESSABLE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class ErrorDetail:
    """One item of ``errors[]``: where the problem is (``body.domain``), what, and the value sent."""

    location: str
    message: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON member; ``value`` is left out when there is none (Kaiten omits empty members)."""
        member: dict[str, Any] = {"location": self.location, "message": self.message}
        if self.value is not None:
            member["value"] = self.value
        return member


def problem_type(status: int) -> str:
    """The problem ``type`` URI Kaiten sends for a status (the RFC section defining it)."""
    return _TYPES.get(status, _TYPE_INTERNAL)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Client Error" if 400 <= status < 500 else "Internal Server Error"


def server_code(status: int) -> str:
    """The code of an injected answer: the kind's name, ``UNKNOWN`` for a status without one."""
    return _KIND_CODES.get(status, "UNKNOWN")


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str,
    error_id: str | None = None,
    errors: list[ErrorDetail] | None = None,
) -> SandboxResponse:
    """A problem+json response; ``errorId`` and ``errors`` only when given, as Kaiten sends them."""
    body: dict[str, Any] = {
        "type": problem_type(status),
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    if error_id is not None:
        body["errorId"] = error_id
    if errors:
        body["errors"] = [error.to_dict() for error in errors]
    return SandboxResponse(status, body, content_type=PROBLEM_CONTENT_TYPE)
