"""HubSpot emulator: CRM v3 orders (list, read, create, PATCH, batch update/upsert/read) and OAuth refresh.

Behaviour follows the orders v3 spec and HubSpot's docs where they say something. Assumptions
where they do not: a batch with an invalid property value or a repeated record is refused whole
(400), as integrations report; a batch whose inputs all fail still answers 207 (``status``
``COMPLETE``, empty ``results``); how a 207 names failed inputs is the ``batch_errors`` setting
(see :mod:`~airflow_provider_crm.sandbox.vendors.hubspot.batch`); without ``properties=`` a read
returns every set property (HubSpot returns a default subset), a requested but unset property
is ``null``; write answers echo cleared properties as ``""``; a wrong client secret is answered
like a wrong client id (``BAD_CLIENT_ID``); an unsupported ``grant_type`` is ``BAD_GRANT_TYPE``.
The list's ``paging`` appears only when there is a next page, as in HubSpot's answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from airflow_provider_crm.sandbox.common.auth import bearer_token
from airflow_provider_crm.sandbox.common.ids import utc_now_iso
from airflow_provider_crm.sandbox.common.settings import (
    SettingCheck,
    non_empty_string,
    optional,
    positive_int,
    positive_number,
    string_list,
)
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import GatewayPage, HttpStatus, RateLimit, ServerError
from airflow_provider_crm.sandbox.messages import (
    JSON_CONTENT_TYPE,
    InvalidJson,
    SandboxRequest,
    SandboxResponse,
    format_seconds,
    json_response,
)
from airflow_provider_crm.sandbox.routing import Router, route
from airflow_provider_crm.sandbox.vendors.hubspot.batch import (
    GROUPED,
    error_style,
    read_batch,
    run_batch,
    validate_batch,
)
from airflow_provider_crm.sandbox.vendors.hubspot.errors import (
    DAILY,
    EXPIRED_AUTHENTICATION,
    GATEWAY_TITLES,
    HTML_CONTENT_TYPE,
    INVALID_AUTHENTICATION,
    MISSING_SCOPES,
    TEN_SECONDLY_ROLLING,
    VALIDATION_ERROR,
    error_response,
    gateway_page,
    rate_limit_body,
)
from airflow_provider_crm.sandbox.vendors.hubspot.limits import (
    DAILY_HEADER,
    DAILY_REMAINING_HEADER,
    INTERVAL_HEADER,
    MAX_HEADER,
    OAUTH_APP,
    PRIVATE_APP,
    REMAINING_HEADER,
    Budget,
    HubSpotLimits,
)
from airflow_provider_crm.sandbox.vendors.hubspot.properties import PROPERTIES, PropertyDef, property_from_dict
from airflow_provider_crm.sandbox.vendors.hubspot.render import cleared_names, render_order, requested_properties
from airflow_provider_crm.sandbox.vendors.hubspot.state import HubSpotState
from airflow_provider_crm.sandbox.vendors.hubspot.validation import (
    BodyError,
    parse_batch,
    parse_batch_read,
    parse_object_input,
)
from airflow_provider_crm.sandbox.vendors.hubspot.writes import OrderWrites, WriteError

SCOPE_READ = "crm.objects.orders.read"
SCOPE_WRITE = "crm.objects.orders.write"
DEFAULT_SCOPES = (SCOPE_READ, SCOPE_WRITE)

ORDERS = "/crm/v3/objects/orders"
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100

CORRELATION_HEADER = "x-hubspot-correlation-id"

# Query counts and cursors: ASCII digits only (``int`` and ``str.isdigit`` take " 2\n", "+2", "²").
_DIGITS = re.compile(r"[0-9]{1,18}")

_CREDENTIALS_NOT_FOUND = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_MISSING_SCOPES = (
    "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes."
)


def _iso(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _elapsed(seconds: float) -> str:
    """HubSpot's coarse wording: ``5 second(s)``, ``3 minute(s)``, ``2 hour(s)``, ``1 day(s)``."""
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}(s)"
    return f"{int(seconds)} second(s)"


def _property_definitions(key: str, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must map property names to definitions")
    return {name: property_from_dict(name, data).to_dict() for name, data in value.items()}


class HubSpotApp(VendorApp):
    """Emulates ``https://api.hubapi.com`` for CRM orders.

    Credentials: the private-app token (``default_token``) or an OAuth access token from
    ``POST /oauth/v1/token`` (``grant_type=refresh_token`` with ``client_id``,
    ``client_secret`` and ``refresh_token`` equal to the settings); access tokens expire after
    ``access_token_ttl_seconds``. Run-time settings (change them with :meth:`configure`;
    :meth:`reset` restores them): ``scopes`` (the token's scopes; reads need
    ``crm.objects.orders.read``, writes ``crm.objects.orders.write``, else 403),
    ``burst_limit`` per ``interval_ms`` and ``daily_limit`` (``None`` = only reported in the
    ``X-HubSpot-RateLimit-*`` headers; a number = enforced with 429s), the OAuth values above,
    ``extra_properties`` (property definitions added to :data:`PROPERTIES`; see
    :meth:`add_property`) and ``batch_errors`` (how a 207 names failed inputs, one of
    :data:`~airflow_provider_crm.sandbox.vendors.hubspot.batch.ERROR_STYLES`).

    ``wall_clock`` (token expiry, daily limit) and ``monotonic_clock`` (burst windows) are read
    at each use; replace them on a running app to move time without waiting.
    """

    name = "hubspot"
    default_token = "pat-na1-sandbox-hubspot-token-0123456789"
    settings: ClassVar[Mapping[str, SettingCheck]] = {
        "scopes": string_list,
        "burst_limit": optional(positive_int),
        "interval_ms": positive_int,
        "daily_limit": optional(positive_int),
        "client_id": non_empty_string,
        "client_secret": non_empty_string,
        "refresh_token": non_empty_string,
        "access_token_ttl_seconds": positive_number,
        "extra_properties": _property_definitions,
        "batch_errors": error_style,
    }

    scopes: tuple[str, ...] = DEFAULT_SCOPES
    burst_limit: int | None = None
    interval_ms: int = 10_000
    daily_limit: int | None = None
    client_id: str = "sandbox-hubspot-client"
    client_secret: str = "sandbox-hubspot-secret-0123456789"
    refresh_token: str = "sandbox-hubspot-refresh-0123456789"
    access_token_ttl_seconds: float = 1800.0
    extra_properties: dict[str, dict[str, Any]]
    batch_errors: str = GROUPED

    def __init__(self, token: str | None = None) -> None:
        self.extra_properties = {}
        super().__init__(token)
        self.wall_clock: Callable[[], float] = time.time
        self.monotonic_clock: Callable[[], float] = time.monotonic
        self._state = HubSpotState(self.lock, clock=lambda: self.wall_clock())
        self._limits = HubSpotLimits(monotonic=lambda: self.monotonic_clock(), wall=lambda: self.wall_clock())
        self._writes = OrderWrites(self._state, self.catalogue)
        self._router = Router.serving(self)

    @property
    def state(self) -> HubSpotState:
        """Stored orders and tokens (``orders``, ``get``, ``find_by_property``, ``tokens_issued``)."""
        return self._state

    # VendorApp contract.

    def is_authorized(self, request: SandboxRequest) -> bool:
        """The OAuth token endpoint is open; everything else needs a valid bearer token."""
        if self._is_oauth(request):
            return True
        with self.lock:
            return self._app_kind(request) is not None

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        """Apply the rate limits, then route an authorized request."""
        if self._is_oauth(request):
            return self._route(request, check_scopes=False)
        app_kind = self._app_kind(request)
        if app_kind is None:  # the token expired since is_authorized
            return self.unauthorized(request)
        policy = self._limits.exceeded(app_kind, self._budget())
        if policy is not None:
            return self._too_many(request, policy, app_kind, self.interval_ms)
        self._limits.hit(app_kind)
        return self._route(request, check_scopes=True)

    def unauthorized(self, request: SandboxRequest) -> SandboxResponse:
        """401: ``EXPIRED_AUTHENTICATION`` for an expired OAuth token, else ``INVALID_AUTHENTICATION``."""
        credential = bearer_token(request)
        expiry = self._state.token_expiry(credential) if credential else None
        if expiry is not None:
            ago = _elapsed(max(0.0, self.wall_clock() - expiry))
            message = f"The OAuth token used to make this call expired {ago} ago."
            context = {"expire time": [_iso(expiry)]}
            return error_response(401, request.request_id, message, category=EXPIRED_AUTHENTICATION, context=context)
        # As HubSpot announced the v3 authentication errors (community.hubspot.com, "Improvements
        # to authentication errors for V3 endpoints"), with ``links`` (API keys are long retired).
        return error_response(
            401,
            request.request_id,
            _CREDENTIALS_NOT_FOUND,
            category=INVALID_AUTHENTICATION,
            links={"oauth": "https://developers.hubspot.com/docs/methods/auth/oauth-overview"},
        )

    def rate_limited(self, request: SandboxRequest, fault: RateLimit) -> SandboxResponse:
        """429 for ``fault.policy`` (default ``TEN_SECONDLY_ROLLING``); ``Retry-After`` only if forced.

        ``reset_header`` has no HubSpot counterpart and is ignored.
        """
        interval_ms = fault.interval_ms if fault.interval_ms is not None else round(fault.retry_after * 1000)
        with self.lock:
            app_kind = self._app_kind(request) or PRIVATE_APP
            response = self._too_many(request, fault.policy or TEN_SECONDLY_ROLLING, app_kind, interval_ms)
        if fault.force_retry_after_header:
            response.headers["Retry-After"] = format_seconds(fault.retry_after)
        return response

    def server_error(self, request: SandboxRequest, fault: ServerError) -> SandboxResponse:
        """JSON ``Error`` for most statuses, a Cloudflare-like page for gateway ones, or ``fault.body``.

        An :class:`HttpStatus` fault's headers are added (a ``Content-Type`` among them sets the
        body's type).
        """
        headers = dict(fault.headers or {}) if isinstance(fault, HttpStatus) else {}
        content_type = next((headers.pop(key) for key in list(headers) if key.lower() == "content-type"), None)
        if fault.body is not None:
            looks_json = fault.body.lstrip().startswith(("{", "["))
            default_type = JSON_CONTENT_TYPE if looks_json else HTML_CONTENT_TYPE
            response = SandboxResponse(fault.status, fault.body, content_type=content_type or default_type)
        elif fault.status in GATEWAY_TITLES:
            response = self._gateway_page(fault.status)
        else:
            message = "internal error" if fault.status >= 500 else f"Injected {fault.status} answer"
            response = error_response(fault.status, request.request_id, message)
        response.headers.update(headers)
        return response

    def gateway_error(self, request: SandboxRequest, fault: GatewayPage) -> SandboxResponse:
        """The Cloudflare-like page, for any status (or ``fault.body``)."""
        if fault.body is not None:
            return SandboxResponse(fault.status, fault.body, content_type=HTML_CONTENT_TYPE)
        return self._gateway_page(fault.status)

    def payload_too_large(self, request: SandboxRequest, limit: int) -> SandboxResponse:
        """413 ``Error`` document naming the limit."""
        return error_response(413, request.request_id, f"The request body exceeds the limit of {limit} bytes")

    def is_token_endpoint(self, request: SandboxRequest) -> bool:
        """``/oauth/...``: the token refresh endpoint."""
        return self._is_oauth(request)

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        """404 for a path or method no route serves."""
        message = f"No API route matches {request.method} {request.path}"
        return error_response(404, request.request_id, message)

    def decorate(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Add the correlation id and, for API calls with a valid token, the rate-limit headers."""
        response.headers.setdefault(CORRELATION_HEADER, request.request_id)
        if self._is_oauth(request):
            return
        app_kind = self._app_kind(request)
        if app_kind is not None:
            for key, value in self._limits.headers(app_kind, self._budget()).items():
                response.headers.setdefault(key, value)

    def reset_state(self) -> None:
        """Forget orders, tokens and counted requests."""
        super().reset_state()
        self._limits.clear()

    # Test helpers.

    def catalogue(self) -> dict[str, PropertyDef]:
        """The order properties in force: :data:`PROPERTIES` plus ``extra_properties``."""
        extra = {name: property_from_dict(name, data) for name, data in self.extra_properties.items()}
        return {**PROPERTIES, **extra}

    def add_property(
        self,
        name: str,
        type: str,
        *,
        options: Sequence[str] = (),
        multiple: bool = False,
        unique: bool = False,
        read_only: bool = False,
    ) -> PropertyDef:
        """Define (or redefine) an order property until the next :meth:`reset`."""
        definition = PropertyDef(name, type, tuple(options), multiple, unique, read_only)
        with self.lock:
            self.configure({"extra_properties": {**self.extra_properties, name: definition.to_dict()}})
        return definition

    def seed(self, properties: dict[str, str]) -> str:
        """Store an order directly (validated like a create, not journaled); returns its id."""
        if not all(isinstance(value, str) for value in properties.values()):
            raise ValueError("HubSpot property values must be strings")
        with self.lock:
            outcome = self._writes.create(properties)
        if isinstance(outcome, WriteError):
            raise ValueError(outcome.message)
        return str(outcome["id"])

    # Helpers.

    @staticmethod
    def _gateway_page(status: int) -> SandboxResponse:
        html, ray_id = gateway_page(status)
        response = SandboxResponse(status, html, content_type=HTML_CONTENT_TYPE)
        response.headers["CF-RAY"] = f"{ray_id}-IAD"
        return response

    @staticmethod
    def _is_oauth(request: SandboxRequest) -> bool:
        return request.segments[:1] == ("oauth",)

    def _app_kind(self, request: SandboxRequest) -> str | None:
        credential = bearer_token(request)
        if credential is None:
            return None
        if credential == self.token:
            return PRIVATE_APP
        return OAUTH_APP if self._state.token_active(credential) else None

    def _budget(self) -> Budget:
        return Budget(self.burst_limit, self.interval_ms, self.daily_limit)

    def _route(self, request: SandboxRequest, *, check_scopes: bool) -> SandboxResponse:
        found = self._router.match(request.method, request.segments)
        if found is None:
            return self.not_found(request)
        route, params = found
        if check_scopes and route.roles and not set(route.roles) & set(self.scopes):
            return error_response(
                403,
                request.request_id,
                _MISSING_SCOPES,
                category=MISSING_SCOPES,
                context={"missingScopes": list(route.roles)},
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": list(route.roles)},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )
        return route.handler(request, params)

    def _too_many(self, request: SandboxRequest, policy: str, app_kind: str, interval_ms: int) -> SandboxResponse:
        response = json_response(429, rate_limit_body(request.request_id, policy))
        budget = self._budget()
        if policy == DAILY:
            response.headers[DAILY_HEADER] = str(budget.daily_max())
            response.headers[DAILY_REMAINING_HEADER] = "0"
        else:
            response.headers[MAX_HEADER] = str(budget.burst_max(app_kind))
            response.headers[REMAINING_HEADER] = "0"
            response.headers[INTERVAL_HEADER] = str(interval_ms)
        return response

    def _json(self, request: SandboxRequest) -> Any:
        try:
            return request.json()
        except InvalidJson as exc:
            raise BodyError(f"Invalid input JSON: {exc}") from exc

    def _body_error(self, request: SandboxRequest, error: BodyError) -> SandboxResponse:
        return error_response(
            400,
            request.request_id,
            error.message,
            category=VALIDATION_ERROR,
            context=error.context,
            errors=error.details(),
        )

    def _write_error(self, request: SandboxRequest, error: WriteError) -> SandboxResponse:
        return error_response(
            error.status,
            request.request_id,
            error.message,
            category=error.category,
            context=error.context or None,
            errors=error.errors or None,
        )

    # Route handlers.

    @route("POST", "/oauth/v1/token")
    def _issue_token(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        form = dict(parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True))
        problem: tuple[str, str] | None = None
        if form.get("grant_type") != "refresh_token":
            problem = ("BAD_GRANT_TYPE", "unsupported grant_type; the sandbox only refreshes tokens")
        elif form.get("client_id") != self.client_id:
            problem = ("BAD_CLIENT_ID", "missing or invalid client id")
        elif form.get("client_secret") != self.client_secret:
            problem = ("BAD_CLIENT_ID", "missing or invalid client secret")
        elif form.get("refresh_token") != self.refresh_token:
            problem = ("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        if problem is not None:
            body = {"status": problem[0], "message": problem[1], "correlationId": request.request_id}
            return json_response(400, body)
        ttl = self.access_token_ttl_seconds
        return json_response(
            200,
            {
                "token_type": "bearer",
                "refresh_token": self.refresh_token,
                "access_token": self._state.issue_token(ttl),
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            },
            stored=True,
        )

    @route("GET", ORDERS, (SCOPE_READ,))
    def _list(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        limit_text = request.query_value("limit")
        after_text = request.query_value("after")
        limit_text = limit_text if limit_text is not None else str(DEFAULT_LIST_LIMIT)
        limit = int(limit_text) if _DIGITS.fullmatch(limit_text) else 0
        if not 1 <= limit <= MAX_LIST_LIMIT:
            message = f"limit must be an integer between 1 and {MAX_LIST_LIMIT}; got {limit_text!r}"
            return error_response(400, request.request_id, message, context={"limit": [str(limit_text)]})
        if after_text is not None and _DIGITS.fullmatch(after_text) is None:
            message = f"after must be a paging cursor returned by a previous page; got {after_text!r}"
            return error_response(400, request.request_id, message, context={"after": [after_text]})
        records = self._state.orders()
        if after_text is not None:
            records = [record for record in records if int(record["id"]) >= int(after_text)]
        requested = requested_properties(request)
        body: dict[str, Any] = {"results": [render_order(record, requested=requested) for record in records[:limit]]}
        if len(records) > limit:
            after = records[limit]["id"]
            body["paging"] = {"next": {"after": after, "link": f"{ORDERS}?limit={limit}&after={after}"}}
        return json_response(200, body)

    @route("GET", ORDERS + "/{order_id}", (SCOPE_READ,))
    def _get(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        resolved = self._writes.resolve(params["order_id"], request.query_value("idProperty"))
        if isinstance(resolved, WriteError):
            return self._write_error(request, resolved)
        record = self._state.get(resolved)
        assert record is not None  # resolved above, under the same lock
        return json_response(200, render_order(record, requested=requested_properties(request)))

    @route("POST", ORDERS, (SCOPE_WRITE,))
    def _create(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        try:
            properties = parse_object_input(self._json(request), create=True)
        except BodyError as exc:
            return self._body_error(request, exc)
        outcome = self._writes.create(properties)
        if isinstance(outcome, WriteError):
            return self._write_error(request, outcome)
        return json_response(201, render_order(outcome), stored=True)

    @route("PATCH", ORDERS + "/{order_id}", (SCOPE_WRITE,))
    def _update(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        try:
            properties = parse_object_input(self._json(request))
        except BodyError as exc:
            return self._body_error(request, exc)
        outcome = self._writes.update(params["order_id"], request.query_value("idProperty"), properties)
        if isinstance(outcome, WriteError):
            return self._write_error(request, outcome)
        return json_response(200, render_order(outcome, cleared=cleared_names(properties)), stored=True)

    @route("POST", ORDERS + "/batch/update", (SCOPE_WRITE,))
    def _batch_update(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return self._batch(request, upsert=False)

    @route("POST", ORDERS + "/batch/upsert", (SCOPE_WRITE,))
    def _batch_upsert(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return self._batch(request, upsert=True)

    def _batch(self, request: SandboxRequest, *, upsert: bool) -> SandboxResponse:
        started = utc_now_iso()
        try:
            inputs = parse_batch(self._json(request), upsert=upsert)
        except BodyError as exc:
            return self._body_error(request, exc)
        refused = validate_batch(self._writes, inputs, upsert=upsert)
        if refused is not None:
            return self._write_error(request, refused)
        status, body = run_batch(self._writes, inputs, upsert=upsert, started=started, style=self.batch_errors)
        return json_response(status, body, stored=bool(body["results"]))

    @route("POST", ORDERS + "/batch/read", (SCOPE_READ,))
    def _batch_read(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        started = utc_now_iso()
        try:
            read = parse_batch_read(self._json(request))
        except BodyError as exc:
            return self._body_error(request, exc)
        refused = self._writes.check_id_property(read.id_property)
        if refused is not None:
            return self._write_error(request, refused)
        status, body = read_batch(self._writes, read.ids, read.id_property, read.properties, started=started)
        return json_response(status, body)
