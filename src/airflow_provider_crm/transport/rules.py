"""What a vendor tells the shared transport: how to read its errors and how to wait.

The transport knows HTTP; everything vendor-specific (error envelopes, rate-limit headers,
business errors hidden in a 200) lives in a :class:`VendorRules` subclass next to the hook.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import requests

from airflow_provider_crm.errors import CrmApiError, error_class_for_status, excerpt
from airflow_provider_crm.transport.waits import header_wait


class Disposition(enum.Enum):
    """What a failed attempt means for retrying it."""

    FINAL = "final"
    """Retrying cannot help (bad input, auth, not found, a daily quota spent)."""
    NOT_APPLIED = "not_applied"
    """The server refused the request without acting on it (429, 408): safe to resend any method."""
    MAYBE_APPLIED = "maybe_applied"
    """The outcome is unknown (5xx, connection lost after sending): resend only idempotent calls."""


@dataclass(frozen=True)
class Problem:
    """An error body reduced to the fields every vendor has in some form."""

    message: str
    code: str | None = None
    request_id: str | None = None
    details: Any = None


def json_or_none(response: requests.Response) -> Any:
    """The response body as JSON, or ``None`` when it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


class VendorRules:
    """Defaults that suit most JSON APIs; vendors override what differs."""

    vendor: str = "API"
    request_id_headers: tuple[str, ...] = ("x-request-id", "x-correlation-id")
    rate_limit_default_wait: float = 10.0
    """Wait after a 429 that carries no hint."""

    def parse_problem(self, response: requests.Response) -> Problem:
        """Read the vendor's error envelope; the default takes ``message`` or the reason."""
        body = json_or_none(response)
        message = ""
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("detail") or body.get("title") or "")
        return Problem(message=message or response.reason or "error", details=body)

    def request_id(self, response: requests.Response) -> str | None:
        for name in self.request_id_headers:
            value = response.headers.get(name)
            if value:
                return value
        return None

    def wait_hint(self, response: requests.Response) -> float | None:
        """Seconds the server asked us to wait, if it said."""
        return header_wait(response.headers)

    def error_for(self, response: requests.Response, *, conn_id: str | None = None) -> CrmApiError | None:
        """``None`` for a successful response, else the typed error it stands for.

        ``conn_id`` is the Airflow connection the request was made with; a 401 or 403 names it.
        """
        if response.status_code < 400:
            return None
        return self.build_error(response, self.parse_problem(response), conn_id=conn_id)

    def build_error(self, response: requests.Response, problem: Problem, *, conn_id: str | None = None) -> CrmApiError:
        """The error for ``response``: class and message are chosen first, then it is built once."""
        cls = self.error_class(response.status_code, problem)
        return cls(
            self.error_message(response, problem),
            vendor=self.vendor,
            status=response.status_code,
            code=problem.code,
            request_id=problem.request_id or self.request_id(response),
            retry_after=self.wait_hint(response),
            details=problem.details,
            body_excerpt=excerpt(response.text),
            conn_id=conn_id,
        )

    def error_class(self, status: int, problem: Problem) -> type[CrmApiError]:
        """The error class for an answer; by default the one its HTTP status stands for."""
        return error_class_for_status(status)

    def error_message(self, response: requests.Response, problem: Problem) -> str:
        """What the error says; by default the vendor's own message."""
        return problem.message

    def disposition(self, error: CrmApiError) -> Disposition:
        """Whether (and how safely) a failed request may be sent again."""
        status = error.status or 0
        if status in (408, 429):
            return Disposition.NOT_APPLIED
        if status >= 500:
            return Disposition.MAYBE_APPLIED
        return Disposition.FINAL

    def pause_after(self, response: requests.Response) -> float:
        """Seconds to hold the next request back, from rate-limit headers (0: no pause)."""
        return 0.0

    def advertised_rate(self, response: requests.Response) -> float | None:
        """Requests per second the server's headers say it allows, if they say (else ``None``).

        The limiter ignores values that are not a finite number above zero, so vendors may pass on
        what the headers hold without checking it again.
        """
        return None

    def retry_wait(self, error: CrmApiError) -> float | None:
        """The wait a vendor prescribes for this error; ``None`` means use backoff."""
        if error.retry_after is not None:
            return error.retry_after
        if error.status == 429:
            return self.rate_limit_default_wait
        return None


def require_json(response: requests.Response, vendor: str) -> Any:
    """The body of a successful response as JSON; a non-JSON body is a vendor error."""
    body = json_or_none(response)
    if body is None:
        raise CrmApiError(
            "expected a JSON body but got none or invalid JSON",
            vendor=vendor,
            status=response.status_code,
            body_excerpt=excerpt(response.text),
        )
    return body
