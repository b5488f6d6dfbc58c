"""Kaiten's error documents: RFC 9457 ``application/problem+json`` with Kaiten's extensions.

Every Kaiten error carries the standard members (``type``, ``title``, ``status``, ``detail``,
``instance``) plus ``code`` (the stable machine code clients should branch on, because one status
can mean several things), ``errorId`` (the id of the server-side log entry) and, for validation,
``errors[]`` of ``{location, message, value}``. The codes below are the emulator's; the vendor's
contract documents the members and shows ``License.NotFound`` as an example code.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from airflow_provider_crm.sandbox.messages import SandboxResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"

MALFORMED = "Request.Malformed"
INVALID_TOKEN = "Auth.InvalidToken"
INSUFFICIENT_SCOPE = "Auth.InsufficientScope"
CUSTOMER_NOT_FOUND = "Customer.NotFound"
ROUTE_NOT_FOUND = "Route.NotFound"
METHOD_NOT_ALLOWED = "Route.MethodNotAllowed"
SLUG_TAKEN = "Customer.SlugTaken"
LIMIT_REACHED = "Customer.LimitReached"
VALIDATION_FAILED = "Validation.Failed"
RATE_LIMITED = "RateLimit.Exceeded"
PAYLOAD_TOO_LARGE = "Request.TooLarge"

_SERVER_CODES = {
    500: "Internal.Error",
    502: "Gateway.BadGateway",
    503: "Service.Unavailable",
    504: "Gateway.Timeout",
}


@dataclass(frozen=True)
class ErrorDetail:
    """One item of ``errors[]``: where the problem is (``body.domain``), what, and the value sent."""

    location: str
    message: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON member."""
        return {"location": self.location, "message": self.message, "value": self.value}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def server_code(status: int) -> str:
    """The code of an injected answer: the server's fault for 5xx, a generic refusal for 4xx."""
    if status < 500:
        return "Request.Rejected"
    return _SERVER_CODES.get(status, "Internal.Error")


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str,
    error_id: str,
    errors: list[ErrorDetail] | None = None,
) -> SandboxResponse:
    """A problem+json response; ``errors`` is only present when given (validation answers)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "errorId": error_id,
    }
    if errors is not None:
        body["errors"] = [error.to_dict() for error in errors]
    return SandboxResponse(status, body, content_type=PROBLEM_CONTENT_TYPE)
