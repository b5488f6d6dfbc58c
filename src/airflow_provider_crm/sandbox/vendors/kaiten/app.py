"""Kaiten (kaiten.sh) emulator: the Core API's customer endpoints with Kaiten's auth and errors.

Routes live under ``/api``, as on a real deployment (the vendor SDK appends it to the base URL
because every call without it answers 404). ``PUT /api/customers/{slug}`` is a full replacement
answered with an empty 204: ``externalCustomerId`` and ``domain`` are cleared when omitted; a
``slug`` other than the path's, or any non-empty ``integrations``, is refused with 422 (as the
vendor's ``updatecustomer/endpoint.go`` does). A customer document always carries
``externalCustomerId`` (``null`` when unset) and leaves ``domain`` and ``integrations`` out when
there are none; a list page leaves ``nextCursor`` out on its last page. Every error is
``application/problem+json`` (see :mod:`.errors`). Assumptions where the vendor is
silent: ``errorId`` (sent on 500s only) equal to the request's id, an ``x-request-id`` header on
every answer, cursors that stay valid when earlier customers are deleted, and 405 for a known
path with the wrong method.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

from airflow_provider_crm.sandbox.common.auth import bearer_token
from airflow_provider_crm.sandbox.common.bodies import valid_object
from airflow_provider_crm.sandbox.common.settings import SettingCheck, non_empty_string, string_list
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import RateLimit, ServerError
from airflow_provider_crm.sandbox.messages import (
    InvalidJson,
    SandboxRequest,
    SandboxResponse,
    format_seconds,
    json_response,
)
from airflow_provider_crm.sandbox.routing import Router, route
from airflow_provider_crm.sandbox.vendors.kaiten.errors import (
    CUSTOMER_NOT_FOUND,
    DELETE_NOT_FOUND,
    INTEGRATIONS_NOT_SETTABLE,
    INVALID_TOKEN,
    LIMIT_REACHED,
    MALFORMED,
    METHOD_NOT_ALLOWED,
    MISSING_AUTHORIZATION,
    MISSING_SCOPE,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    ROUTE_NOT_FOUND,
    SLUG_NOT_RENAMEABLE,
    SLUG_TAKEN,
    UNKNOWN_AUTHORIZATION,
    UPDATE_NOT_FOUND,
    VALIDATION_DETAIL,
    VALIDATION_FAILED,
    ErrorDetail,
    problem,
    server_code,
)
from airflow_provider_crm.sandbox.vendors.kaiten.state import KaitenState
from airflow_provider_crm.sandbox.vendors.kaiten.validation import (
    parse_limit,
    slugify,
    validate_create,
    validate_replace,
)

READ_CUSTOMERS = "read:customers"
WRITE_CUSTOMERS = "write:customers"

PLATFORM_TOKEN_PREFIX = "ksm_"
WEBHOOK_SECRET_PREFIX = "whsec_"

_CURSOR = re.compile(r"seq:(\d+)")

_SERVER_DETAILS = {
    500: "unexpected error occurred",
    503: "The service is temporarily unavailable; retry later",
}


def has_scope(granted: Sequence[str], required: str) -> bool:
    """Kaiten's scope rule: ``write:<m>`` implies ``read:<m>``; ``read:*``/``write:*`` cover all."""
    action, _, module = required.partition(":")
    accepted = {required, f"{action}:*"}
    if action == "read":
        accepted |= {f"write:{module}", "write:*"}
    return any(scope in accepted for scope in granted)


def encode_cursor(sequence: int) -> str:
    """An opaque cursor pointing after one customer."""
    return base64.urlsafe_b64encode(f"seq:{sequence}".encode()).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The position a cursor points after, or ``None`` if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    found = _CURSOR.fullmatch(text)
    return int(found.group(1)) if found else None


def _customer_limit(key: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{key} must be null or a non-negative integer")
    return value


def quoted(value: str) -> str:
    """A value quoted the way the vendor's messages quote it (Go's ``%q``)."""
    return json.dumps(value, ensure_ascii=False)


class KaitenApp(VendorApp):
    """Emulates a Kaiten deployment's Core API (``{host}/api``) for customers.

    Run-time settings (change them directly or with :meth:`configure`; :meth:`reset` restores
    them): ``readonly_token`` (a second accepted token), ``scopes`` and ``readonly_scopes`` (what
    each token may do; a write needs ``write:customers``, else 403), ``customer_limit`` (``None``
    = off; creates beyond it get 409 ``Customer.LimitReached``).
    """

    name = "kaiten"
    default_token = "ksh_sandbox_kaiten_token_0123456789"
    settings: ClassVar[Mapping[str, SettingCheck]] = {
        "readonly_token": non_empty_string,
        "scopes": string_list,
        "readonly_scopes": string_list,
        "customer_limit": _customer_limit,
    }

    readonly_token: str = "ksh_sandbox_kaiten_readonly_0123456789"
    scopes: tuple[str, ...] = (READ_CUSTOMERS, WRITE_CUSTOMERS)
    readonly_scopes: tuple[str, ...] = (READ_CUSTOMERS,)
    customer_limit: int | None = None

    def __init__(self, token: str | None = None) -> None:
        super().__init__(token)
        self.service_account: dict[str, str] = {"id": str(uuid.uuid4()), "name": "sandbox-service-account"}
        self._state = KaitenState(self.lock)
        self._router = Router.serving(self)

    @property
    def state(self) -> KaitenState:
        """Stored customers (``customers``, ``get``, ``count``)."""
        return self._state

    # VendorApp contract.

    def is_authorized(self, request: SandboxRequest) -> bool:
        """Either the full-access token or the read-only one."""
        return bearer_token(request) in (self.token, self.readonly_token)

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        """Route an authorized request and enforce the route's scope."""
        found = self._router.match(request.method, request.segments)
        if found is None:
            return self.not_found(request)
        route, params = found
        granted = self.scopes if bearer_token(request) == self.token else self.readonly_scopes
        missing = [scope for scope in route.roles if not has_scope(granted, scope)]
        if missing:
            response = self._problem(request, 403, MISSING_SCOPE, f"missing required scope: {missing[0]}")
            response.headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{missing[0]}"'
            return response
        return route.handler(request, params)

    def unauthorized(self, request: SandboxRequest) -> SandboxResponse:
        """401 with the vendor's code for a missing header, another scheme, or a bad credential."""
        header = (request.header("Authorization") or "").strip()
        credential = bearer_token(request)
        if not header:
            return self._unauthorized(request, MISSING_AUTHORIZATION, "Missing Authorization header")
        if credential is None:
            return self._unauthorized(request, UNKNOWN_AUTHORIZATION, "Invalid Authorization header format")
        if credential.startswith(PLATFORM_TOKEN_PREFIX):
            detail = (
                "Platform credentials (ksm_...) are not accepted by the Core API; use a Kaiten access token (ksh_...)"
            )
        elif credential.startswith(WEBHOOK_SECRET_PREFIX):
            detail = "A webhook signing secret (whsec_...) is not an API credential"
        else:
            detail = "Invalid or expired access token"
        return self._unauthorized(request, INVALID_TOKEN, detail)

    def _unauthorized(self, request: SandboxRequest, code: str, detail: str) -> SandboxResponse:
        response = self._problem(request, 401, code, detail)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    def rate_limited(self, request: SandboxRequest, fault: RateLimit) -> SandboxResponse:
        """429 problem with, optionally, ``Retry-After``."""
        wait = format_seconds(fault.retry_after)
        response = self._problem(request, 429, RATE_LIMITED, f"too many requests: try again in {wait} s")
        if fault.send_retry_after_header:
            response.headers["Retry-After"] = wait
        return response

    def server_error(self, request: SandboxRequest, fault: ServerError) -> SandboxResponse:
        """An injected error as a problem, or the fault's raw body (e.g. a proxy's HTML page)."""
        if fault.body is not None:
            return SandboxResponse(fault.status, fault.body, content_type="text/html; charset=utf-8")
        default = "The request was refused" if fault.status < 500 else "The upstream service failed"
        detail = _SERVER_DETAILS.get(fault.status, default)
        # Only a withheld cause (an unexpected failure, answered 500) gets a correlation id.
        error_id = request.request_id if fault.status == 500 else None
        return problem(fault.status, server_code(fault.status), detail, instance=request.path, error_id=error_id)

    def payload_too_large(self, request: SandboxRequest, limit: int) -> SandboxResponse:
        """413 problem naming the limit."""
        return self._problem(request, 413, PAYLOAD_TOO_LARGE, f"The request body exceeds {limit} bytes")

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        """404 for an unknown path, 405 (with ``Allow``) for a known path and another method."""
        allowed = sorted({route.method for route in self._router.routes if route.match(route.method, request.segments)})
        if allowed:
            detail = f"Method {request.method} is not allowed on {request.path}"
            response = self._problem(request, 405, METHOD_NOT_ALLOWED, detail)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return self._problem(request, 404, ROUTE_NOT_FOUND, f"No route for {request.method} {request.path}")

    def decorate(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Every answer carries the request's id."""
        response.headers.setdefault("x-request-id", request.request_id)

    # Test helpers.

    def seed(
        self,
        slug: str,
        name: str,
        external_customer_id: str | None = None,
        domain: str | None = None,
        integrations: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Store a customer directly (validated like a create, not journaled); returns the record.

        ``integrations`` (adapter name -> ``CustomerIntegration``) stands for links Kaiten's own
        connectors made; the customer endpoints cannot set them.
        """
        fields: dict[str, Any] = {"name": name, "slug": slug, "externalCustomerId": external_customer_id}
        if domain is not None:
            fields["domain"] = domain
        errors = validate_create(fields)
        if integrations is not None and not all(isinstance(link, dict) for link in integrations.values()):
            errors.append(ErrorDetail("integrations", "expected object of objects", integrations))
        if errors:
            raise ValueError("; ".join(f"{error.location}: {error.message}" for error in errors))
        with self.lock:
            if self._state.get(slug) is not None:
                raise ValueError(f"slug {slug!r} is already taken")
            return self._state.create(fields | {"integrations": integrations or {}}, slug, self.service_account)

    def render(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as the API returns it: ``domain`` and ``integrations`` left out when
        there are none, ``externalCustomerId`` always present (``null`` when unset)."""
        return {
            key: value
            for key, value in record.items()
            if not ((key == "domain" and value is None) or (key == "integrations" and not value))
        }

    # Helpers.

    def _problem(
        self,
        request: SandboxRequest,
        status: int,
        code: str,
        detail: str,
        errors: list[ErrorDetail] | None = None,
    ) -> SandboxResponse:
        return problem(status, code, detail, instance=request.path, errors=errors)

    def _invalid(self, request: SandboxRequest, errors: Sequence[ErrorDetail]) -> SandboxResponse:
        return self._problem(request, 422, VALIDATION_FAILED, VALIDATION_DETAIL, list(errors))

    def _json_object(self, request: SandboxRequest) -> dict[str, Any] | SandboxResponse:
        if not request.body.strip():
            return self._problem(request, 400, MALFORMED, "A request body is required")
        try:
            body = request.json()
        except InvalidJson as exc:
            return self._problem(request, 400, MALFORMED, f"The request body is not valid JSON: {exc}")
        if not isinstance(body, dict):
            return self._invalid(request, [ErrorDetail("body", "expected object", body)])
        return body

    def _missing(self, request: SandboxRequest, slug: str, code: str = CUSTOMER_NOT_FOUND) -> SandboxResponse:
        return self._problem(request, 404, code, f"Customer with slug {quoted(slug)} not found")

    def _free_slug(self, name: str) -> str:
        base = slugify(name)
        slug, suffix = base, 2
        while self._state.get(slug) is not None:
            tail = f"-{suffix}"
            slug, suffix = base[: 100 - len(tail)].rstrip("-") + tail, suffix + 1
        return slug

    # Route handlers.

    @route("GET", "/api/customers", (READ_CUSTOMERS,))
    def _list(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        limit = parse_limit(request.query_value("limit"))
        if isinstance(limit, ErrorDetail):
            return self._invalid(request, [limit])
        cursor = request.query_value("cursor")
        after = 0
        if cursor:
            decoded = decode_cursor(cursor)
            if decoded is None:
                return self._invalid(request, [ErrorDetail("query.cursor", "invalid cursor", cursor)])
            after = decoded
        records, last = self._state.page(after, limit)
        page: dict[str, Any] = {"items": [self.render(record) for record in records], "hasMore": last is not None}
        if last is not None:
            page["nextCursor"] = encode_cursor(last)
        return json_response(200, page)

    @route("POST", "/api/customers", (WRITE_CUSTOMERS,))
    def _create(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        body = valid_object(self._json_object(request), validate_create, partial(self._invalid, request))
        if isinstance(body, SandboxResponse):
            return body
        if self.customer_limit is not None and self._state.count() >= self.customer_limit:
            detail = "Customer creation limit reached for this organization"
            return self._problem(request, 409, LIMIT_REACHED, detail)
        slug = body.get("slug")
        if slug is None:
            slug = self._free_slug(body["name"])
        elif self._state.get(slug) is not None:
            detail = f"Customer with slug {quoted(slug)} already exists in this organization"
            return self._problem(request, 409, SLUG_TAKEN, detail)
        record = self._state.create(body, slug, self.service_account)
        response = json_response(201, self.render(record), stored=True)
        response.headers["Location"] = f"/api/customers/{slug}"
        return response

    @route("GET", "/api/customers/{slug}", (READ_CUSTOMERS,))
    def _get(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        record = self._state.get(params["slug"])
        if record is None:
            return self._missing(request, params["slug"])
        return json_response(200, self.render(record))

    @route("PUT", "/api/customers/{slug}", (WRITE_CUSTOMERS,))
    def _replace(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        slug = params["slug"]
        body = valid_object(self._json_object(request), validate_replace, partial(self._invalid, request))
        if isinstance(body, SandboxResponse):
            return body
        # Refused before the customer is looked up, as the vendor's endpoint does.
        if body.get("slug", slug) != slug:
            detail = "slug cannot be changed through this endpoint; omit it or send the current slug"
            return self._problem(request, 422, SLUG_NOT_RENAMEABLE, detail)
        if body.get("integrations"):
            detail = "integrations cannot be set through this endpoint; use the dedicated integration endpoints"
            return self._problem(request, 422, INTEGRATIONS_NOT_SETTABLE, detail)
        if self._state.replace(slug, body, self.service_account) is None:
            return self._missing(request, slug, UPDATE_NOT_FOUND)
        return SandboxResponse(204, stored=True)

    @route("DELETE", "/api/customers/{slug}", (WRITE_CUSTOMERS,))
    def _delete(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        if not self._state.delete(params["slug"]):
            return self._missing(request, params["slug"], DELETE_NOT_FOUND)
        return SandboxResponse(204, stored=True)
