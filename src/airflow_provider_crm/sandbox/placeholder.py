"""Stand-in for vendors whose emulator does not exist yet.

It keeps the URL prefix and token reserved (so connections and docs can already point at it)
and answers every authorized request with 501, which no client can mistake for success.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow_provider_crm.sandbox.base import VendorApp
from airflow_provider_crm.sandbox.faults import RateLimit, ServerError
from airflow_provider_crm.sandbox.messages import SandboxRequest, SandboxResponse, format_seconds


class PlaceholderApp(VendorApp):
    """Answers 501 for every request under its prefix."""

    emulated: ClassVar[bool] = False

    def __init__(self, name: str, default_token: str, token: str | None = None) -> None:
        self.name = name
        self.default_token = default_token
        super().__init__(token)

    @property
    def state(self) -> dict[str, Any]:
        """Always empty."""
        return {}

    def _error(self, status: int, code: str, message: str) -> SandboxResponse:
        return SandboxResponse(status, {"error": code, "message": message})

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        """Every route is unimplemented."""
        return self._error(501, "not_implemented", f"the {self.name} emulator is not available yet")

    def unauthorized(self, request: SandboxRequest) -> SandboxResponse:
        """Plain 401."""
        return self._error(401, "unauthorized", "missing or invalid bearer token")

    def rate_limited(self, request: SandboxRequest, fault: RateLimit) -> SandboxResponse:
        """Plain 429 with Retry-After."""
        response = self._error(429, "too_many_requests", "rate limit exceeded")
        if fault.send_retry_after_header:
            response.headers["Retry-After"] = format_seconds(fault.retry_after)
        return response

    def server_error(self, request: SandboxRequest, fault: ServerError) -> SandboxResponse:
        """Plain 5xx."""
        if fault.body is not None:
            return SandboxResponse(fault.status, fault.body, content_type="text/html; charset=utf-8")
        return self._error(fault.status, "server_error", "injected server error")

    def reset_state(self) -> None:
        """Nothing to reset."""

    def snapshot(self) -> dict[str, Any]:
        """Marks the vendor as not emulated."""
        return {"emulated": False}
