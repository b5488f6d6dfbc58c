"""Kustomer emulator: KObject create/update/get/lookup and bulk jobs, with Kustomer's validation and errors.

Behaviour follows Kustomer's API reference where it is documented. ``rev`` is optimistic
locking (Kustomer's errors page: "409 Conflict: Typically related to optimistic locking"): a new
object is at ``rev`` 0, every update raises the stored ``rev``, and an update whose body carries
another ``rev`` than the stored one is refused with 409 and changes nothing. A KObject's ``type``
is ``kobject.<klass>`` and a JSON:API error's ``status`` is a string such as ``"404"``, as in
Kustomer's OpenAPI (LarisLab/kustomer-client:openapi.json@1d997b7: every KObject example has
``"type": "kobject.order"`` with ``relationships.klass.data.id`` ``"order"``; the error schemas of
``GET /conversations/{id}`` type ``errors[].status`` as string; the SDK's own client reads it as a
number, so the hook accepts both). Assumptions where the reference is silent: lookup by an unknown
externalId answers 404; PUT merges the given top-level fields and merges ``custom`` key by key
(whether Kustomer merges or replaces ``custom`` is not documented); an update raises ``rev`` by 1
(the examples show 0 before and 3 after, not the step); the 409 body for a stale ``rev`` (not
documented) is a JSON:API error pointing at ``/rev``; ``x-ratelimit-reset`` is sent as seconds to
wait. Both documented error shapes occur: ``{"code","message","meta"}`` (400,
unknown route) and JSON:API ``{"status","code","title","detail"}`` (401, 403, 404 for a missing
object, 409, 429, 5xx).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from airflow_provider_crm.sandbox.common.ids import new_object_id, utc_now_iso
from airflow_provider_crm.sandbox.common.ratelimits import FixedWindowCounter, SlidingWindowLimiter
from airflow_provider_crm.sandbox.common.settings import (
    SettingCheck,
    boolean,
    non_negative_number,
    optional,
    per_minute,
    positive_int,
    positive_number,
    string_list,
)
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import RateLimit, ServerError
from airflow_provider_crm.sandbox.messages import (
    SandboxRequest,
    SandboxResponse,
    format_seconds,
    json_response,
)
from airflow_provider_crm.sandbox.routing import Router, route
from airflow_provider_crm.sandbox.vendors.kustomer.bulk import BulkJobs, Operation
from airflow_provider_crm.sandbox.vendors.kustomer.bulk_documents import batches_document, job_document, job_summary
from airflow_provider_crm.sandbox.vendors.kustomer.bulk_requests import read_bulk_items
from airflow_provider_crm.sandbox.vendors.kustomer.errors import body_too_large, jsonapi_error, simple_error
from airflow_provider_crm.sandbox.vendors.kustomer.resources import relationship, segment
from airflow_provider_crm.sandbox.vendors.kustomer.state import ATTRIBUTE_KEYS, KustomerState
from airflow_provider_crm.sandbox.vendors.kustomer.writes import (
    Refusal,
    create_refusal,
    missing,
    read_json,
    update_refusal,
)

ROLES_CREATE = (
    "org.permission.kobject.create",
    "org.permission.kobject.kobject_*.create",
    "org.user.kobject.write",
)
ROLES_UPDATE = (
    "org.permission.kobject.update",
    "org.permission.kobject.kobject_*.update",
    "org.user.kobject.write",
)
ROLES_READ = ("org.permission.kobject.read", "org.permission.kobject.kobject_*.read", "org.user.kobject.read")
ROLES_DELETE = ("org.permission.kobject.delete", "org.user.kobject.delete")
ROLES_KLASS_READ = ("org.permission.klass.read", "org.user.klass.read", "org.admin.klass.read")
ROLES_CUSTOMER_READ = ("org.permission.customer.read", "org.user.customer.read")
# developer.kustomer.com/api/core-resources/get-bulk-operation-by-id and .../get-bulk-operation-batches
ROLES_BULK_READ = ("org.permission.bulk.read", "org.user.bulk.read")

DEFAULT_ROLES = (
    "org.permission.kobject.create",
    "org.permission.kobject.read",
    "org.permission.kobject.update",
    "org.permission.kobject.delete",
    "org.permission.klass.read",
    "org.permission.customer.read",
    "org.permission.bulk.read",
)

MAX_PAGE_SIZE = 100


def kobject_type(klass: str) -> str:
    """A KObject's JSON:API ``type``: ``kobject.`` and its klass, as ``"kobject.order"`` in Kustomer's examples."""
    return f"kobject.{klass}"


class KustomerApp(VendorApp):
    """Emulates ``https://<org>.api.kustomerapp.com`` for KObjects.

    Run-time settings (change them directly or with :meth:`configure`; :meth:`reset` restores
    them): ``create_limit_per_minute`` (``None`` = off; otherwise creates beyond it within
    ``create_limit_window`` seconds for one customer get 429 unless the body has
    ``importedAt``; objects without a customer share one budget), ``org_limit_per_minute``
    (reported in ``x-ratelimit-*`` headers), ``enforce_org_limit`` (answer 429 once that budget
    is used up) and ``roles`` (the token's roles; a route needs any one of its roles, else 403).
    Bulk jobs (:mod:`.bulk`): ``bulk_processing_seconds`` (submit to ``complete``, on
    ``monotonic_clock``), ``bulk_batch_size`` (items per batch) and ``bulk_max_body_bytes`` (a
    larger submit gets 413). ``monotonic_clock`` is read through the app, so a test may replace it.
    """

    name = "kustomer"
    default_token = "sandbox-kustomer-token-0123456789"
    settings: ClassVar[Mapping[str, SettingCheck]] = {
        "create_limit_per_minute": optional(per_minute),
        "create_limit_window": positive_number,
        "org_limit_per_minute": per_minute,
        "enforce_org_limit": boolean,
        "roles": string_list,
        "bulk_processing_seconds": non_negative_number,
        "bulk_batch_size": positive_int,
        "bulk_max_body_bytes": positive_int,
    }

    create_limit_per_minute: int | None = None
    create_limit_window: float = 60.0
    org_limit_per_minute: int = 1000
    enforce_org_limit: bool = False
    roles: tuple[str, ...] = DEFAULT_ROLES
    bulk_processing_seconds: float = 0.2
    bulk_batch_size: int = 25
    bulk_max_body_bytes: int = 1024 * 1024

    def __init__(self, token: str | None = None) -> None:
        super().__init__(token)
        self.org_id = new_object_id()
        self._token_id = new_object_id()
        self._user_id = new_object_id()
        self._token_created_at = utc_now_iso()
        self._state = KustomerState(self.lock, self.org_id)
        self._org_window = FixedWindowCounter(self.org_limit_per_minute)
        self._creates = SlidingWindowLimiter()
        self.monotonic_clock: Callable[[], float] = time.monotonic
        self._bulk = BulkJobs(self._state, self.lock, clock=lambda: self.monotonic_clock())
        self._router = Router.serving(self)

    @property
    def state(self) -> KustomerState:
        """Stored KObjects (``kobjects``, ``get``, ``find_by_external_id``, ``count``), bulk jobs due by now applied."""
        self._bulk.advance()
        return self._state

    @property
    def bulk(self) -> BulkJobs:
        """Submitted bulk jobs (``jobs``, ``find``)."""
        return self._bulk

    # VendorApp contract.

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        """Route an authorized request (after processing the bulk batches due by now)."""
        self._bulk.advance()
        if self.enforce_org_limit and self._org_window.remaining() <= 0:
            return self._too_many(self._org_window.reset_in(), "Org rate limit exceeded")
        found = self._router.match(request.method, request.segments)
        if found is None:
            return self.not_found(request)
        route, params = found
        if route.roles and not self._has_any_role(route.roles):
            detail = f"Token lacks a required role (any of: {', '.join(route.roles)})"
            return json_response(403, jsonapi_error(403, detail))
        return route.handler(request, params)

    def unauthorized(self, request: SandboxRequest) -> SandboxResponse:
        """401 for a missing or wrong bearer token."""
        return json_response(401, jsonapi_error(401, "Missing or invalid API key"))

    def rate_limited(self, request: SandboxRequest, fault: RateLimit) -> SandboxResponse:
        """429 with ``x-ratelimit-*`` headers and, optionally, ``Retry-After``."""
        response = self._too_many(fault.retry_after, "Rate limit exceeded")
        if fault.reset_header is not None:
            response.headers["x-ratelimit-reset"] = format_seconds(fault.reset_header)
        if fault.send_retry_after_header:
            response.headers["Retry-After"] = format_seconds(fault.retry_after)
        return response

    def server_error(self, request: SandboxRequest, fault: ServerError) -> SandboxResponse:
        """A 5xx with a JSON:API error body, or the fault's raw body."""
        if fault.body is not None:
            return SandboxResponse(fault.status, fault.body, content_type="text/html; charset=utf-8")
        return json_response(fault.status, jsonapi_error(fault.status, "Injected server error"))

    def payload_too_large(self, request: SandboxRequest, limit: int) -> SandboxResponse:
        """413 with a JSON:API error body."""
        return json_response(413, body_too_large(limit))

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        """404 for a path or method no route serves."""
        message = f"Cannot {request.method} {request.path}"
        return json_response(404, simple_error("not_found", message, {"path": request.path}))

    def decorate(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Count the request against the org budget and add the headers every answer carries."""
        self._org_window.limit = self.org_limit_per_minute
        self._org_window.hit()
        response.headers.setdefault("x-ratelimit-limit", str(self.org_limit_per_minute))
        response.headers.setdefault("x-ratelimit-remaining", str(self._org_window.remaining()))
        response.headers.setdefault("x-request-id", request.request_id)

    def reset_state(self) -> None:
        """Forget objects, bulk jobs and rate-limit counters."""
        self._bulk.clear()
        super().reset_state()
        self._creates.clear()
        self._org_window.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump: org id, objects per klass, and a compact line per bulk job (``bulk_jobs``)."""
        with self.lock:
            jobs = self._bulk.jobs()
            now = self._bulk.now()
            return {**self._state.snapshot(), "bulk_jobs": [job_summary(job, now) for job in jobs]}

    # Test helpers.

    def seed(
        self, klass: str, fields: dict[str, Any], customer: str | None = None, *, rev: int | None = None
    ) -> dict[str, Any]:
        """Store an object directly (validated like a create, not journaled); returns the record.

        ``rev`` sets the stored revision, e.g. to stand for an object updated several times;
        without it the object is new, at ``rev`` 0.
        """
        with self.lock:
            refusal = create_refusal(self._state, klass, fields)
            if refusal is not None:
                raise ValueError(refusal.detail)
            owner = customer if customer is not None else fields.get("customer")
            return self._state.create(klass, fields, owner, rev=rev)

    # Helpers.

    def _has_any_role(self, required: Sequence[str]) -> bool:
        return any(fnmatchcase(role, pattern) for role in self.roles for pattern in required)

    def _too_many(self, wait: float, detail: str) -> SandboxResponse:
        response = json_response(429, jsonapi_error(429, detail))
        response.headers["x-ratelimit-limit"] = str(self.org_limit_per_minute)
        response.headers["x-ratelimit-remaining"] = "0"
        response.headers["x-ratelimit-reset"] = format_seconds(round(wait, 3))
        return response

    def _bad_request(self, message: str, meta: dict[str, Any] | None = None) -> SandboxResponse:
        return json_response(400, simple_error("bad_request", message, meta))

    def render(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record in the API's JSON:API-like resource shape."""
        klass = record["klass"]
        relationships: dict[str, Any] = {
            "org": relationship("org", "orgs", self.org_id),
            "klass": {
                "link": {"self": f"/v1/klasses/{segment(klass)}"},
                "data": {"type": "klass", "id": klass},
            },
        }
        for kind, collection in (("customer", "customers"), ("company", "companies")):
            if record.get(kind):
                relationships[kind] = relationship(kind, collection, record[kind])
        return {
            "type": kobject_type(klass),
            "id": record["id"],
            "attributes": {key: record[key] for key in ATTRIBUTE_KEYS},
            "relationships": relationships,
            "links": {"self": f"/v1/klasses/{segment(klass)}/{segment(record['id'])}"},
        }

    # Route handlers.

    @route("GET", "/v1/auth/tokens/current")
    def _current_token(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        data = {
            "type": "token",
            "id": self._token_id,
            "attributes": {
                "name": "sandbox",
                "roles": list(self.roles),
                "createdAt": self._token_created_at,
                "expiresAt": None,
            },
            "relationships": {
                "org": relationship("org", "orgs", self.org_id),
                "user": relationship("user", "users", self._user_id),
            },
        }
        return json_response(200, {"data": data})

    @route("POST", "/v1/klasses/{klass}", ROLES_CREATE)
    @route("POST", "/v1/customers/{customer}/klasses/{klass}", ROLES_CREATE)
    def _create(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        klass = params["klass"]
        body = read_json(request)
        if isinstance(body, Refusal):
            return body.response()
        refusal = create_refusal(self._state, klass, body)
        if refusal is not None:
            return refusal.response()
        customer = params.get("customer", body.get("customer"))
        if self.create_limit_per_minute is not None and body.get("importedAt") is None:
            wait = self._creates.acquire(customer or "", self.create_limit_per_minute, self.create_limit_window)
            if wait is not None:
                detail = f"Create limit of {self.create_limit_per_minute} KObjects per minute per customer reached"
                return self._too_many(wait, detail)
        record = self._state.create(klass, body, customer)
        return json_response(201, {"data": self.render(record)}, stored=True)

    @route("PUT", "/v1/klasses/{klass}/{kobject_id}", ROLES_UPDATE)
    def _update(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        klass, kobject_id = params["klass"], params["kobject_id"]
        body = read_json(request)
        if isinstance(body, Refusal):
            return body.response()
        refusal = update_refusal(self._state, klass, kobject_id, body)
        if refusal is not None:
            return refusal.response()
        record = self._state.update(klass, kobject_id, body)
        assert record is not None  # checked above, under the same lock
        return json_response(200, {"data": self.render(record)}, stored=True)

    @route("GET", "/v1/klasses/{klass}/{kobject_id}", ROLES_READ)
    def _get(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        record = self._state.get(params["klass"], params["kobject_id"])
        if record is None:
            return missing(params["klass"], repr(params["kobject_id"])).response()
        return json_response(200, {"data": self.render(record)})

    @route("GET", "/v1/klasses/{klass}/externalId={external_id}", ROLES_READ)
    def _get_by_external_id(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        record = self._state.find_by_external_id(params["klass"], params["external_id"])
        if record is None:
            return missing(params["klass"], f"with externalId {params['external_id']!r}").response()
        return json_response(200, {"data": self.render(record)})

    @route("DELETE", "/v1/klasses/{klass}/{kobject_id}", ROLES_DELETE)
    def _delete(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        if not self._state.delete(params["klass"], params["kobject_id"]):
            return missing(params["klass"], repr(params["kobject_id"])).response()
        return SandboxResponse(204, stored=True)

    @route("GET", "/v1/klasses/{klass}", ROLES_KLASS_READ)
    @route("GET", "/v1/customers/{customer}/klasses/{klass}", ROLES_CUSTOMER_READ)
    def _list(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        klass, customer = params["klass"], params.get("customer")
        try:
            page = int(request.query_value("page") or 1)
            page_size = min(int(request.query_value("pageSize") or MAX_PAGE_SIZE), MAX_PAGE_SIZE)
        except ValueError:
            return self._bad_request("page and pageSize must be integers", {"parameter": "page"})
        if page < 1 or page_size < 1:
            return self._bad_request("page and pageSize must be at least 1", {"parameter": "page"})
        records = self._state.kobjects(klass)
        if customer is not None:
            records = [record for record in records if record["customer"] == customer]
        total_pages = max(1, math.ceil(len(records) / page_size))
        chunk = records[(page - 1) * page_size : page * page_size]
        base = f"/v1/customers/{segment(customer)}" if customer is not None else "/v1"
        base = f"{base}/klasses/{segment(klass)}"

        def link(number: int) -> str:
            return f"{base}?page={number}&pageSize={page_size}"

        return json_response(
            200,
            {
                "data": [self.render(record) for record in chunk],
                "meta": {
                    "page": page,
                    "pageSize": page_size,
                    "total": len(records),
                    "totalPages": total_pages,
                },
                "links": {
                    "self": link(page),
                    "first": link(1),
                    "prev": link(page - 1) if page > 1 else None,
                    "next": link(page + 1) if page < total_pages else None,
                    "last": link(total_pages),
                },
            },
        )

    @route("POST", "/v1/klasses/{klass}/bulk", ROLES_CREATE)
    def _bulk_create(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return self._bulk_submit(request, params["klass"], Operation.CREATE)

    @route("PUT", "/v1/klasses/{klass}/bulk", ROLES_UPDATE)
    def _bulk_update(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return self._bulk_submit(request, params["klass"], Operation.UPDATE)

    def _bulk_submit(self, request: SandboxRequest, klass: str, operation: Operation) -> SandboxResponse:
        submitted = read_bulk_items(
            request, max_body_bytes=self.bulk_max_body_bytes, ids_query=operation is Operation.UPDATE
        )
        if isinstance(submitted, SandboxResponse):
            return submitted
        items, ids = submitted
        job = self._bulk.submit(
            klass,
            operation,
            items,
            ids=ids,
            processing_seconds=self.bulk_processing_seconds,
            batch_size=self.bulk_batch_size,
            method=request.method,
            path=f"/v1/klasses/{segment(klass)}/bulk",
            request_id=request.request_id,
        )
        # The OpenAPI answers a bulk create 201 and a bulk update 200, each with the job.
        status = 201 if operation is Operation.CREATE else 200
        return json_response(status, job_document(job, self._bulk.now(), self._bulk_user()), stored=True)

    @route("GET", "/v1/bulk/{job_id}", ROLES_BULK_READ)
    def _bulk_job(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        job = self._bulk.find(params["job_id"])
        if job is None:
            return self._unknown_job(params["job_id"])
        return json_response(200, job_document(job, self._bulk.now(), self._bulk_user()))

    @route("GET", "/v1/bulk/{job_id}/batches", ROLES_BULK_READ)
    def _bulk_batches(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        job = self._bulk.find(params["job_id"])
        if job is None:
            return self._unknown_job(params["job_id"])
        return json_response(200, batches_document(job, self._bulk.now()))

    def _unknown_job(self, job_id: str) -> SandboxResponse:
        return json_response(404, jsonapi_error(404, f"Bulk operation {job_id!r} not found"))

    def _bulk_user(self) -> dict[str, Any]:
        """The API key's user as a bulk job's ``payload.api.user`` shows it (OpenAPI example)."""
        return {
            "id": self._user_id,
            "userType": "user",
            "roles": list(self.roles),
            "orgName": "sandbox",
            "subject": self._user_id,
            "org": self.org_id,
        }
