"""MicroBase customer service: ``customer.update`` over its HTTP RPC interface."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import requests
from requests.auth import HTTPBasicAuth

from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmBadRequestError,
    CrmConfigurationError,
    CrmConflictError,
    CrmNotFoundError,
    excerpt,
    restated,
)
from airflow_provider_crm.hooks.base import CrmHook
from airflow_provider_crm.hooks.tokens import CachedToken, IssuedToken
from airflow_provider_crm.models.microbase import MicroBaseCustomer, customer_update
from airflow_provider_crm.transport import Disposition, Problem, VendorRules, api_path, json_or_none, require_json

DEFAULT_TOKEN_PATH = "/services/oauth/v2/token"

BUSINESS_ERRORS: dict[str, type[CrmApiError]] = {
    "customer_not_found": CrmNotFoundError,
    "customer_invalid_email": CrmBadRequestError,
    "validation_error": CrmBadRequestError,
    "duplicate_key": CrmConflictError,
    "invalid_token": CrmAuthenticationError,
}


class MicroBaseRules(VendorRules):
    """MicroBase reports business errors as HTTP 200 with ``ok: false``: read the body, not the status.

    The envelopes, from the framework's source (microbase 0.11.0, ``src/modules/transports/http.js``
    and ``src/modules/utils/index.js``): ``{"ok": false, "error": "<code>", "data": ...}`` from an
    operation; ``{"ok": false, "error": {"message": ...}}`` (an object) from the last-resort
    handler; and ``{"ok": false, "data": "<message>"}`` with no code at all when an operation
    failed on an error that carries none (a database failure, say).
    """

    vendor = "MicroBase"

    def parse_problem(self, response: requests.Response) -> Problem:
        body = json_or_none(response)
        if isinstance(body, dict) and body.get("ok") is False and "error" not in body:
            data = body.get("data")
            message = excerpt(str(data), 300) if data not in (None, "") else "ok: false without an error code"
            return Problem(message=message, details=data)
        if not isinstance(body, dict) or "error" not in body:
            return super().parse_problem(response)
        error, data = body.get("error"), body.get("data")
        if isinstance(error, dict):  # unhandled server error: {"error": {"message": ...}}
            return Problem(
                message=str(error.get("message") or "internal error"),
                code=str(error.get("code") or error.get("name") or "internal_error"),
                details=error,
            )
        code = str(error)
        message = code if data is None else f"{code}: {excerpt(str(data), 300)}"
        return Problem(message=message, code=code, details=data)

    def error_for(self, response: requests.Response, *, conn_id: str | None = None) -> CrmApiError | None:
        if response.status_code >= 400:
            return super().error_for(response, conn_id=conn_id)
        body = json_or_none(response)
        if isinstance(body, dict) and body.get("ok") is False:
            return self.build_error(response, self.parse_problem(response), conn_id=conn_id)
        return None

    def error_class(self, status: int, problem: Problem) -> type[CrmApiError]:
        """A business error code names the class; the HTTP status (often 200) does not."""
        return BUSINESS_ERRORS.get(problem.code or "") or super().error_class(status, problem)

    def disposition(self, error: CrmApiError) -> Disposition:
        if error.code in BUSINESS_ERRORS or (error.status or 0) < 400:
            return Disposition.FINAL
        return super().disposition(error)


class MicroBaseHook(CrmHook):
    """Talks to a MicroBase customer service.

    Connection: host = the service's base URL (e.g. ``http://localhost:3005``, or the gateway).
    Auth, either: password = a bearer token (JWT); or client credentials: login = client id,
    password = client secret and extra ``token_url`` = the OAuth service's token URL (or path
    on the same host, e.g. ``/services/oauth/v2/token``). Issued tokens are cached until shortly
    before they expire, registered with Airflow's masker, and renewed once if the service
    answers ``invalid_token``.

    :param microbase_conn_id: The Airflow connection to use (default ``microbase_default``).
    """

    conn_type = "microbase"
    conn_name_attr = "microbase_conn_id"
    default_conn_name = "microbase_default"
    hook_name = "MicroBase"
    vendor_rules = MicroBaseRules()

    def __init__(self, microbase_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=microbase_conn_id, **kwargs)

    # -- auth -------------------------------------------------------------------------------

    @cached_property
    def token_source(self) -> Callable[[], str]:
        token_url = self.extra("token_url")
        if not token_url:
            return super().token_source
        if not self.connection.login:
            raise CrmConfigurationError(
                f"MicroBase: connection {self.conn_id!r} sets token_url but its login (client id) is empty"
            )
        return CachedToken(self._fetch_token)

    def token_url(self) -> str:
        """The OAuth token endpoint: extra ``token_url`` as a URL or a path on the service's host (default
        ``/services/oauth/v2/token``)."""
        raw = str(self.extra("token_url") or DEFAULT_TOKEN_PATH)
        return self.checked_url(raw) if "://" in raw else self.base_url() + "/" + raw.lstrip("/")

    def _fetch_token(self) -> IssuedToken:
        """POST the client credentials as the vendor's Postman collection does (HTTP Basic, form
        ``grant_type=client_credentials`` and ``scope``).

        The answer is not documented. A token is read from ``access_token`` or ``token``, with or
        without the MicroBase ``ok`` envelope; a refusal may be ``ok: false`` on HTTP 200 (the
        framework's convention) or a 4xx, and either is a :class:`CrmAuthenticationError`.
        """
        client_secret = self.secret(self.connection.password, "client secret in its password field")
        try:
            return self.request_token(
                self.token_url(),
                "",
                data={"grant_type": "client_credentials", "scope": str(self.extra("scope", "api"))},
                auth=HTTPBasicAuth(self.connection.login, client_secret),
            )
        except CrmApiError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            message = f"the token endpoint refused the client credentials: {exc.message}"
            raise restated(exc, message, CrmAuthenticationError) from None

    # -- calls ------------------------------------------------------------------------------

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Call a customer-service RPC operation and return its ``ok: true`` body.

        Calls are sent as idempotent: the operations used here set values (a repeat publishes
        the update event again but changes nothing). An ``invalid_token`` answer with client
        credentials renews the token once.

        :param operation: The operation, e.g. ``customer.update`` (posted to ``/services/customer/v1/<operation>``).
        :param payload: The operation's arguments, sent as the JSON body.
        :return: The answer's JSON object (``{}`` when it is JSON but not an object).
        :raises CrmApiError: On ``ok: false``, the class its error code names (e.g. ``customer_not_found``:
            :class:`~airflow_provider_crm.errors.CrmNotFoundError`), else the one the HTTP status names.
        """
        path = api_path("services", "customer", "v1", operation)
        renewable = isinstance(self.token_source, CachedToken)
        for attempt in (1, 2):
            if renewable:
                self.token_source()  # a refused client credential fails here, and is not asked twice
            try:
                response = self.transport.request("POST", path, json=payload, idempotent=True)
                body = require_json(response, self.vendor)
                return body if isinstance(body, dict) else {}
            except CrmAuthenticationError:
                if attempt == 2 or not renewable:
                    raise
                self.token_source.invalidate()  # type: ignore[attr-defined]
        raise AssertionError("unreachable")

    def update_customer(
        self,
        customer_id: str,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        status: str | None = None,
        tags: list[str] | None = None,
    ) -> MicroBaseCustomer:
        """``customer.update``: fields left ``None`` are not sent and keep their value.

        MicroBase ignores empty values, so an empty string is refused rather than sent; ``tags=[]`` is sent.

        :param customer_id: The customer's id (not empty).
        :param email: The new email address (a plain ``local@host.domain`` address, at most 254 characters).
        :param first_name: The new first name.
        :param last_name: The new last name.
        :param status: The new status, ``"ACTIVE"`` or ``"INACTIVE"``.
        :param tags: The new tags, replacing the current ones.
        :return: The customer as the service returns it.
        :raises CrmValidationError: When no field is given or a value is invalid, before anything is sent.
        """
        body = customer_update(
            {
                "id": customer_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "status": status,
                "tags": tags,
            }
        ).to_body()
        return self._customer(self.call("customer.update", body))

    def get_customer(self, customer_id: str) -> MicroBaseCustomer:
        """``customer.info``; raises :class:`~airflow_provider_crm.errors.CrmNotFoundError` if absent.

        :param customer_id: The customer's id.
        """
        return self._customer(self.call("customer.info", {"id": customer_id}))

    def probe(self) -> str:
        """List one customer (``customer.list``)."""
        self.call("customer.list", {"limit": 1})
        return f"Connected to MicroBase at {self.base_url()}; the token can list customers."

    def _customer(self, body: dict[str, Any]) -> MicroBaseCustomer:
        try:
            return MicroBaseCustomer.from_document(body)
        except ValueError as exc:
            raise CrmApiError(f"unexpected customer document: {excerpt(str(exc), 200)}", vendor=self.vendor) from None
