"""MicroBase emulator: the customer service's RPC operations and the OAuth token endpoint.

Operations are ``/services/customer/v1/<operation>`` and accept any HTTP method; the JSON (or
form) body and the query string are merged into one payload, the query winning. Business and
validation errors are **HTTP 200** with ``ok: false``, so clients must read the body.
``customer.update`` writes a field only when the sent value is truthy in JavaScript terms (an
empty string cannot clear a field, ``tags: []`` does replace the tags) and every successful save
publishes ``CUSTOMERS.UPDATE``, repeats included. Only answers the operation handler produced carry
``x-request-id`` (the framework sets it after the token check); gateway pages carry no
``X-Powered-By``. Assumptions where the sources are silent: the emulator's ``customer.create``
needs only an email; the OAuth service documents its request (Postman collection) but not its
answer, so the emulator answers RFC 6749 fields inside the MicroBase envelope (``ok: true``) and
refuses with ``{"ok": false, "error": ...}`` and a 4xx; a ``scope`` other than ``api`` gets 400
``invalid_scope``; and ``customer.list`` ignores ``-field`` exclusions in ``fields``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from airflow_provider_crm.sandbox.common.auth import bearer_token
from airflow_provider_crm.sandbox.common.settings import SettingCheck, non_empty_string, positive_number
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import GatewayPage, OperationFailure, RateLimit, ServerError
from airflow_provider_crm.sandbox.messages import (
    InvalidJson,
    QueryDict,
    SandboxRequest,
    SandboxResponse,
    format_seconds,
    json_response,
    parse_query,
)
from airflow_provider_crm.sandbox.vendors.microbase.errors import (
    CUSTOMER_INVALID_EMAIL,
    CUSTOMER_NOT_FOUND,
    GATEWAY_STATUSES,
    VALIDATION_ERROR,
    business_error,
    duplicate_email,
    express_not_found,
    framework_error,
    gateway_page,
    plain_error,
    success,
    uncoded_error,
)
from airflow_provider_crm.sandbox.vendors.microbase.oauth import claims_for, expires_in, mint_jwt, parse_basic
from airflow_provider_crm.sandbox.vendors.microbase.state import (
    CREATE_EVENT,
    UPDATE_EVENT,
    MicroBaseState,
    new_short_id,
)
from airflow_provider_crm.sandbox.vendors.microbase.validation import (
    CREATE_SCHEMA,
    INFO_SCHEMA,
    STATUSES,
    UPDATE_SCHEMA,
    Schema,
    is_email,
    js_number,
    js_truthy,
    model_errors,
    schema_errors,
)

Operation = Callable[[SandboxRequest, Any], SandboxResponse]

CUSTOMER_SERVICE = "/services/customer/v1"
TOKEN_PATH = "/services/oauth/v2/token"

LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT = 10, 100
# The model's selectable fields, all of them by default (micro-customer-service src/models/customerModel.js).
LIST_FIELDS = ("id", "email", "firstName", "lastName", "tags", "status", "addresses")
LIST_FILTERS = ("id", "email", "status", "tags")
MERGED_FIELDS = ("firstName", "lastName", "tags", "status")


def _qs(values: QueryDict) -> dict[str, Any]:
    """Query or form values the way Express's ``qs`` reads them: ``tags[]=a`` is a list."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        if key.endswith("[]") and len(key) > 2:
            result[key[:-2]] = value if isinstance(value, list) else [value]
        else:
            result[key] = value
    return result


def _error_message(status: int) -> str:
    if status >= 500:
        return "Internal error"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _set_request_id(request: SandboxRequest, response: SandboxResponse) -> None:
    """``x-request-id``: a fresh short id, appended to the caller's id when one was sent."""
    incoming = request.header("x-request-id")
    suffix = new_short_id()
    response.headers.setdefault("x-request-id", f"{incoming}:{suffix}" if incoming else suffix)


def _from_gateway(response: SandboxResponse) -> bool:
    """The gateway's own page (the service never answered)."""
    return response.status in GATEWAY_STATUSES and response.content_type.startswith("text/html")


def _checked_addresses(addresses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for address in addresses:
        if not isinstance(address, dict) or not isinstance(address.get("id"), str) or not address["id"]:
            raise ValueError(f"every address needs a string id, got {address!r}")
    return copy.deepcopy(addresses)


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [part for item in value for part in str(item).split(",")]
    return str(value).split(",")


class MicroBaseApp(VendorApp):
    """Emulates a MicroBase deployment behind its gateway (``{host}/services/...``).

    Run-time settings (change them directly or with :meth:`configure`; :meth:`reset` restores
    them): ``client_id`` and ``client_secret`` (the OAuth client's HTTP Basic credentials) and
    ``token_ttl_seconds`` (lifetime of issued tokens). The static ``token`` never expires.
    """

    name = "microbase"
    default_token = "sandbox-microbase-token-0123456789"
    settings: ClassVar[Mapping[str, SettingCheck]] = {
        "client_id": non_empty_string,
        "client_secret": non_empty_string,
        "token_ttl_seconds": positive_number,
    }

    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-client-secret-0123456789"
    token_ttl_seconds: float = 3600.0

    def __init__(self, token: str | None = None) -> None:
        super().__init__(token)
        self._state = MicroBaseState(self.lock)
        self._operations: dict[str, Operation] = {
            f"{CUSTOMER_SERVICE}/customer.create": self._create,
            f"{CUSTOMER_SERVICE}/customer.info": self._info,
            f"{CUSTOMER_SERVICE}/customer.list": self._list,
            f"{CUSTOMER_SERVICE}/customer.update": self._update,
            TOKEN_PATH: self._token,
        }
        self._public = frozenset({TOKEN_PATH})

    @property
    def state(self) -> MicroBaseState:
        """Customers, bus events and tokens (``customers``, ``get``, ``events``, ``tokens_issued``)."""
        return self._state

    # VendorApp contract.

    def is_authorized(self, request: SandboxRequest) -> bool:
        """Public operations pass; others need the static token or an unexpired issued one."""
        if self._operation_key(request) in self._public:
            return True
        credential = bearer_token(request)
        if credential is None:
            return False
        return credential == self.token or self._state.token_active(credential)

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        """Run the operation the path names with the merged payload."""
        operation = self._operations.get(self._operation_key(request))
        if operation is None:
            return self.not_found(request)
        payload = self._payload(request)
        if isinstance(payload, SandboxResponse):
            return payload
        response = operation(request, payload)
        _set_request_id(request, response)
        return response

    def unauthorized(self, request: SandboxRequest) -> SandboxResponse:
        """401 ``invalid_token``, after the checks the framework makes before the token check."""
        if self._operation_key(request) not in self._operations:
            return self.not_found(request)
        payload = self._payload(request)
        if isinstance(payload, SandboxResponse):
            return payload
        return plain_error(401, "invalid_token")

    def rate_limited(self, request: SandboxRequest, fault: RateLimit) -> SandboxResponse:
        """429 (the framework has none; a proxy in front could) with, optionally, ``Retry-After``."""
        response = plain_error(429, "rate_limited")
        if fault.send_retry_after_header:
            response.headers["Retry-After"] = format_seconds(fault.retry_after)
        return response

    def server_error(self, request: SandboxRequest, fault: ServerError) -> SandboxResponse:
        """The gateway's HTML page for 502/503/504, else the framework's object-shaped error.

        An :class:`OperationFailure` is the operation's own answer to an error without a code.
        """
        if isinstance(fault, OperationFailure):
            response = uncoded_error(fault.message)
            _set_request_id(request, response)
            return response
        if fault.body is not None:
            return SandboxResponse(fault.status, fault.body, content_type="text/html; charset=utf-8")
        if fault.status in GATEWAY_STATUSES:
            return gateway_page(fault.status)
        # A thrown Error has no enumerable fields of its own, so only its message is copied.
        response = framework_error(fault.status, _error_message(fault.status))
        _set_request_id(request, response)
        return response

    def gateway_error(self, request: SandboxRequest, fault: GatewayPage) -> SandboxResponse:
        """NGINX's page, as for 502/503/504 from ``server_error``."""
        if fault.body is not None:
            return SandboxResponse(fault.status, fault.body, content_type="text/html; charset=utf-8")
        return gateway_page(fault.status)

    def payload_too_large(self, request: SandboxRequest, limit: int) -> SandboxResponse:
        """The body parser's ``entity.too.large`` error through the framework's handler."""
        return framework_error(413, "request entity too large", type="entity.too.large", limit=limit)

    def is_token_endpoint(self, request: SandboxRequest) -> bool:
        """The OAuth client-credentials endpoint."""
        return self._operation_key(request) == TOKEN_PATH

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        """Express's HTML 404 for a path no operation serves."""
        return express_not_found(request.method, request.path)

    def decorate(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """``X-Powered-By: microbase`` on everything the service (not the gateway) answers."""
        if not _from_gateway(response):
            response.headers.setdefault("X-Powered-By", "microbase")

    # Test helpers.

    def seed(
        self,
        id: str | None = None,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        status: str = "ACTIVE",
        tags: list[str] | None = None,
        addresses: list[dict[str, Any]] | None = None,
    ) -> str:
        """Store a customer directly (no event, not journaled); returns its id.

        ``addresses`` are stored as given (each needs an ``id``), in the service's address shape.
        """
        if not email or not is_email(email):
            raise ValueError(f"a valid email is required, got {email!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        with self.lock:
            if id is not None and self._state.get(id) is not None:
                raise ValueError(f"customer id {id!r} already exists")
            if self._state.email_owner(email) is not None:
                raise ValueError(f"email {email!r} is already used")
            record = self._new_record(email, first_name, last_name, status, list(tags or []), id)
            record["addresses"] = _checked_addresses(addresses or [])
            return str(self._state.save(record)["id"])

    def issue_token(self, client_id: str | None = None, scope: str = "api") -> str:
        """Mint an access token as the OAuth endpoint does (it counts in ``tokens_issued``)."""
        now = time.time()
        ttl = self.token_ttl_seconds
        claims = claims_for(client_id or self.client_id, scope, now, ttl, new_short_id())
        token = mint_jwt(claims)
        self._state.add_token(token, now + ttl)
        return token

    @staticmethod
    def render(record: dict[str, Any], fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A stored record in the service's client shape, or only ``fields`` (list answers).

        Unset fields are left out, as Mongoose's ``toJSON`` leaves them out.
        """
        keys = ("email", "firstName", "lastName", "status", "tags", "addresses", "id")
        return {
            key: copy.deepcopy(record[key])
            for key in keys
            if (fields is None or key in fields) and record.get(key) is not None
        }

    # Helpers.

    @staticmethod
    def _operation_key(request: SandboxRequest) -> str:
        # Express routes ignore case and one trailing slash.
        path = request.path.lower()
        return path[:-1] if len(path) > 1 and path.endswith("/") else path

    def _payload(self, request: SandboxRequest) -> Any:
        """Body merged with the query string, or the body parser's 400 for a broken JSON body."""
        content_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        body: Any = {}
        if request.body and (content_type == "application/json" or content_type.endswith("+json")):
            try:
                body = request.json()
            except InvalidJson as exc:
                return self._parse_failed(request, str(exc))
            if not isinstance(body, dict | list):
                return self._parse_failed(request, "JSON body must be an object or an array")
        elif request.body and content_type == "application/x-www-form-urlencoded":
            body = _qs(parse_query(request.body.decode("utf-8", errors="replace")))
        if isinstance(body, list):
            return body
        return {**body, **_qs(request.query)}

    @staticmethod
    def _parse_failed(request: SandboxRequest, message: str) -> SandboxResponse:
        return framework_error(
            400,
            message,
            expose=True,
            statusCode=400,
            status=400,
            body=request.body.decode("utf-8", errors="replace"),
            type="entity.parse.failed",
        )

    def _new_record(
        self,
        email: str,
        first_name: str | None,
        last_name: str | None,
        status: Any,
        tags: list[str],
        customer_id: str | None = None,
    ) -> dict[str, Any]:
        if customer_id is None:
            customer_id = new_short_id()
            while self._state.get(customer_id) is not None:
                customer_id = new_short_id()
        return {
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "status": status,
            "tags": tags,
            "addresses": [],
            "id": customer_id,
        }

    def _save(self, record: dict[str, Any], payload: Any, event: str) -> SandboxResponse:
        """Model validation, the unique email index, then store and publish."""
        errors = model_errors(record)
        if errors:
            return business_error(VALIDATION_ERROR, errors)
        owner = self._state.email_owner(record["email"])
        if owner is not None and owner != record["id"]:
            return duplicate_email(record["email"])
        saved = self._state.save(record)
        self._state.publish(event, saved, payload)
        response = success(customer=self.render(saved))
        response.stored = True
        return response

    # Operations.

    def _existing(self, payload: Any, schema: Schema) -> dict[str, Any] | SandboxResponse:
        """The stored customer ``payload["id"]`` names, once the payload passed the operation's schema."""
        errors = schema_errors(payload, schema)
        if errors:
            return business_error(VALIDATION_ERROR, errors)
        record = self._state.get(payload["id"])
        return record if record is not None else business_error(CUSTOMER_NOT_FOUND, {"id": payload["id"]})

    def _update(self, request: SandboxRequest, payload: Any) -> SandboxResponse:
        record = self._existing(payload, UPDATE_SCHEMA)
        if isinstance(record, SandboxResponse):
            return record
        for key in MERGED_FIELDS:
            if js_truthy(payload.get(key)):
                record[key] = copy.deepcopy(payload[key])
        email = payload.get("email")
        if js_truthy(email):
            if not is_email(email):
                return business_error(CUSTOMER_INVALID_EMAIL, {"email": email})
            record["email"] = email
        return self._save(record, payload, UPDATE_EVENT)

    def _create(self, request: SandboxRequest, payload: Any) -> SandboxResponse:
        errors = schema_errors(payload, CREATE_SCHEMA)
        if errors:
            return business_error(VALIDATION_ERROR, errors)
        email = payload["email"]
        if not is_email(email):
            return business_error(CUSTOMER_INVALID_EMAIL, {"email": email})
        record = self._new_record(
            email,
            payload.get("firstName"),
            payload.get("lastName"),
            payload.get("status", "ACTIVE"),
            list(payload.get("tags") or []),
        )
        return self._save(record, payload, CREATE_EVENT)

    def _info(self, request: SandboxRequest, payload: Any) -> SandboxResponse:
        record = self._existing(payload, INFO_SCHEMA)
        if isinstance(record, SandboxResponse):
            return record
        return success(customer=self.render(record))

    def _list(self, request: SandboxRequest, payload: Any) -> SandboxResponse:
        params = payload if isinstance(payload, dict) else {}
        limit_number = js_number(params.get("limit"))
        limit = abs(int(limit_number)) if js_truthy(limit_number) else LIST_DEFAULT_LIMIT
        limit = min(limit, LIST_MAX_LIMIT) or LIST_DEFAULT_LIMIT
        skip_number = js_number(params.get("skip"))
        skip = max(0, int(skip_number)) if js_truthy(skip_number) else 0
        records = self._state.customers()
        for name in LIST_FILTERS:
            if name in params:
                wanted = set(_split(params[name]))
                records = [
                    record
                    for record in records
                    if (set(record["tags"]) & wanted if name == "tags" else record[name] in wanted)
                ]
        fields: tuple[str, ...] = LIST_FIELDS
        if js_truthy(params.get("fields")):
            chosen = tuple(field for field in _split(params["fields"]) if field in LIST_FIELDS)
            fields = (*chosen, "id") if chosen else LIST_FIELDS
        data = [self.render(record, fields) for record in records[skip : skip + limit]]
        return success(page={"limit": limit, "skip": skip}, data=data)

    def _token(self, request: SandboxRequest, payload: Any) -> SandboxResponse:
        credentials = parse_basic(request.header("Authorization"))
        if credentials != (self.client_id, self.client_secret):
            response = plain_error(401, "invalid_client")
            response.headers["WWW-Authenticate"] = 'Basic realm="oauth"'
            return response
        params = payload if isinstance(payload, dict) else {}
        if params.get("grant_type") != "client_credentials":
            return plain_error(400, "unsupported_grant_type")
        scope = params.get("scope", "api")
        if scope != "api":
            return plain_error(400, "invalid_scope")
        token = self.issue_token(self.client_id, scope)
        body = {
            "ok": True,
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in(self.token_ttl_seconds),
        }
        response = json_response(200, body)
        response.headers["Cache-Control"] = "no-store"
        return response
