"""HubSpot CRM v3 orders: patch one order, batch update/upsert/read many."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests

from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmBadRequestError,
    CrmConfigurationError,
    CrmValidationError,
    restated,
)
from airflow_provider_crm.hooks.base import CrmHook
from airflow_provider_crm.hooks.hubspot_batch import BatchRun, unique_id_property
from airflow_provider_crm.hooks.tokens import CachedToken, IssuedToken
from airflow_provider_crm.models.hubspot import (
    BATCH_SIZE,
    BatchIncompleteError,
    BatchResult,
    HubSpotObject,
    checked_id_property,
    prepare_batch_input,
    serialise_properties,
)
from airflow_provider_crm.transport import Disposition, Problem, VendorRules, api_path, json_or_none, require_json
from airflow_provider_crm.transport.paths import segment

DEFAULT_BASE_URL = "https://api.hubapi.com"
OBJECT_TYPE = "orders"
ORDERS_OBJECT_TYPE_ID = "0-123"
"""HubSpot's object type id for orders, used in record page URLs."""
DEFAULT_INTERVAL_SECONDS = 10.0
LOCKED_MIN_WAIT = 2.0
LOW_BUDGET_FRACTION = 0.1


def _header_number(response: requests.Response, name: str) -> float | None:
    try:
        return float(response.headers[name])
    except (KeyError, ValueError):
        return None


class HubSpotRules(VendorRules):
    """HubSpot's error body, its two 429 policies, 423 Locked and the burst-budget headers."""

    vendor = "HubSpot"
    request_id_headers = ("x-hubspot-correlation-id", "x-request-id")
    rate_limit_default_wait = DEFAULT_INTERVAL_SECONDS

    def parse_problem(self, response: requests.Response) -> Problem:
        body = json_or_none(response)
        if not isinstance(body, dict):
            return super().parse_problem(response)
        message = str(body.get("message") or response.reason or "error")
        details = [
            str(item.get("message"))
            for item in (body.get("errors") or [])[:5]
            if isinstance(item, dict) and item.get("message") and item.get("message") != message
        ]
        code = body.get("policyName") or body.get("category") or body.get("errorType")
        correlation = body.get("correlationId")
        return Problem(
            message="; ".join([message, *details]),
            code=str(code) if code else None,
            request_id=str(correlation) if correlation else None,
            details=body,
        )

    def error_message(self, response: requests.Response, problem: Problem) -> str:
        if response.status_code == 429 and problem.code == "DAILY":
            return (
                "the account's daily API limit is spent; HubSpot resets it at midnight in the account's "
                f"time zone ({problem.message})"
            )
        return super().error_message(response, problem)

    def wait_hint(self, response: requests.Response) -> float | None:
        if response.status_code == 429:
            interval = _header_number(response, "X-HubSpot-RateLimit-Interval-Milliseconds")
            return interval / 1000.0 if interval is not None else DEFAULT_INTERVAL_SECONDS
        hint = super().wait_hint(response)
        if response.status_code == 423:
            return max(LOCKED_MIN_WAIT, hint or 0.0)
        return hint

    def disposition(self, error: CrmApiError) -> Disposition:
        if error.status == 429 and error.code == "DAILY":
            return Disposition.FINAL
        if error.status in (423, 477):
            return Disposition.NOT_APPLIED
        return super().disposition(error)

    def retry_wait(self, error: CrmApiError) -> float | None:
        if error.status in (423, 477):
            return error.retry_after if error.retry_after is not None else LOCKED_MIN_WAIT
        return super().retry_wait(error)

    def advertised_rate(self, response: requests.Response) -> float | None:
        """``X-HubSpot-RateLimit-Max`` requests per ``X-HubSpot-RateLimit-Interval-Milliseconds`` (the burst limit).

        HubSpot's usage guidelines: ``-Max`` is the number of requests allowed in the rolling window,
        ``-Interval-Milliseconds`` the window's length (usually 10000; 190 per 10 s on Professional and
        Enterprise, 100 on Free/Starter); OAuth calls carry them too, without the daily pair
        (developers.hubspot.com/changelog/rate-limit-headers-will-now-appear-for-oauth-authenticated-calls).
        Each private app has its own burst limit (developers.hubspot.com/changelog/increasing-our-api-limits).
        """
        limit = _header_number(response, "X-HubSpot-RateLimit-Max")
        interval = _header_number(response, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if limit is None or not interval:
            return None
        return limit / (interval / 1000.0)

    def pause_after(self, response: requests.Response) -> float:
        """When the rolling window's budget runs low, space the next request up to one slot out.

        A slot is the window divided by its limit (52 ms for 190 per 10 s). The lower the
        remaining budget, the closer the wait gets to a full slot; with none left it is a full
        slot. A client already sending at the limit waits about that long anyway, so this costs
        nothing then, and stops a burst from spending the last requests at once otherwise.
        """
        remaining = _header_number(response, "X-HubSpot-RateLimit-Remaining")
        limit = _header_number(response, "X-HubSpot-RateLimit-Max")
        if remaining is None or limit is None or limit <= 0:
            return 0.0
        low_mark = max(1.0, limit * LOW_BUDGET_FRACTION)
        if remaining > low_mark:
            return 0.0
        interval = _header_number(response, "X-HubSpot-RateLimit-Interval-Milliseconds")
        window = interval / 1000.0 if interval else DEFAULT_INTERVAL_SECONDS
        return window / limit * (1.0 - max(0.0, remaining) / (low_mark + 1))


class HubSpotHook(CrmHook):
    """Talks to HubSpot's CRM API (orders).

    Connection: password = a private-app token (``pat-...``); or OAuth with extras
    ``client_id``, ``client_secret`` and ``refresh_token``: the access token is refreshed from
    ``expires_in`` (not on a 401, as HubSpot asks), cached and masked. Host overrides the base
    URL ``https://api.hubapi.com``.

    :param hubspot_conn_id: The Airflow connection to use (default ``hubspot_default``).
    """

    conn_type = "hubspot"
    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    hook_name = "HubSpot"
    vendor_rules = HubSpotRules()
    default_rate_limit = 10.0
    """HubSpot's smallest burst limit, 100 requests per 10 s (Free/Starter private apps)."""

    def __init__(self, hubspot_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=hubspot_conn_id, **kwargs)

    def base_url(self) -> str:
        """The connection's host, else ``https://api.hubapi.com``."""
        return self.checked_url(self.connection.host or DEFAULT_BASE_URL)

    # -- auth -------------------------------------------------------------------------------

    @cached_property
    def token_source(self) -> Callable[[], str]:
        if not self.extra("refresh_token"):
            return super().token_source
        return CachedToken(self._refresh_access_token)

    def _refresh_access_token(self) -> IssuedToken:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.extra("client_id"),
            "client_secret": self.secret(self.extra("client_secret"), "client_secret extra"),
            "refresh_token": self.secret(self.extra("refresh_token"), "refresh_token extra"),
        }
        if not form["client_id"]:
            raise CrmConfigurationError(f"HubSpot: connection {self.conn_id!r} has a refresh_token but no client_id")
        try:
            return self.request_token(self.base_url(), api_path("oauth", "v1", "token"), data=form)
        except CrmBadRequestError as exc:  # HubSpot answers 400 for a bad refresh token or client
            raise restated(exc, f"the OAuth refresh was refused ({exc.message})", CrmAuthenticationError) from exc

    # -- single objects -----------------------------------------------------------------------

    def _object_path(self, order_id: str) -> str:
        return api_path("crm", "v3", "objects", OBJECT_TYPE, segment(order_id, "order_id"))

    def update_order(
        self,
        order_id: str,
        properties: Mapping[str, Any],
        id_property: str | None = None,
        *,
        clear_nulls: bool = False,
    ) -> HubSpotObject:
        """PATCH one order: the properties sent overwrite stored values, the others are kept.

        ``order_id`` is HubSpot's internal id, or the value of the unique property named by
        ``id_property``. Values are serialised as described in :mod:`~airflow_provider_crm.models.hubspot`.

        :param order_id: The order's internal id, or its ``id_property`` value.
        :param properties: Property names and the values to set.
        :param id_property: A unique property whose value ``order_id`` is; ``None`` for the internal id.
        :param clear_nulls: Send ``None`` values as ``""``, which clears the property; by default they are left out.
        :return: The order as HubSpot returns it.
        :raises CrmValidationError: When no property is left to send or a value cannot be serialised.
        """
        record = f"HubSpot order {order_id!r}"
        body = {"properties": serialise_properties(properties, record=record, clear_nulls=clear_nulls)}
        if not body["properties"]:
            raise CrmValidationError(f"{record}: no properties to update", field="properties", record=record)
        params = {"idProperty": checked_id_property(id_property, record)} if id_property else None
        # HubSpot's PATCH is a partial overwrite: repeating it sets the same values.
        response = self.transport.request(
            "PATCH", self._object_path(order_id), json=body, params=params, idempotent=True
        )
        return self._object(response)

    def get_order(
        self, order_id: str, properties: Sequence[str] | None = None, id_property: str | None = None
    ) -> HubSpotObject:
        """Read one order (with the named properties, else HubSpot's defaults).

        :param order_id: The order's internal id, or its ``id_property`` value.
        :param properties: The property names to return; ``None`` or empty for HubSpot's defaults.
        :param id_property: A unique property whose value ``order_id`` is; ``None`` for the internal id.
        :raises CrmNotFoundError: When there is no such order.
        """
        params: dict[str, str] = {}
        if properties:
            params["properties"] = ",".join(properties)
        if id_property:
            params["idProperty"] = checked_id_property(id_property, f"HubSpot order {order_id!r}")
        return self._object(self.transport.request("GET", self._object_path(order_id), params=params or None))

    # -- batches ------------------------------------------------------------------------------

    def batch_update_orders(self, inputs: Sequence[Mapping[str, Any]], *, clear_nulls: bool = False) -> BatchResult:
        """Update many orders, 100 per call. Each input: ``id``, ``properties``, optional ``id_property``.

        Every input ends up in :attr:`BatchResult.written` or :attr:`BatchResult.errors` (with its
        position in ``inputs``); see :mod:`~airflow_provider_crm.hooks.hubspot_batch` for how. An input
        repeating an earlier one's record goes in a later request, so the last value wins. If a
        request fails after others were settled, :class:`BatchIncompleteError` carries what was
        written; if the first one fails, its error is raised as it came.

        :param inputs: The updates: mappings with ``id``, ``properties`` and optionally ``id_property``
            (or ``idProperty``).
        :param clear_nulls: Send ``None`` values as ``""``, which clears the property; by default they are left out.
        :raises CrmValidationError: When an input is malformed, before anything is sent.
        """
        return self._batch("update", inputs, clear_nulls=clear_nulls, need_id_property=False)

    def batch_upsert_orders(self, inputs: Sequence[Mapping[str, Any]], *, clear_nulls: bool = False) -> BatchResult:
        """Create or update many orders by a unique property, 100 per call.

        Each input: ``id`` (the unique property's value), ``id_property`` and ``properties``.
        Outcomes as for :meth:`batch_update_orders`; ``new`` tells created from updated.

        :param inputs: The records: mappings with ``id``, ``id_property`` (or ``idProperty``) and ``properties``.
        :param clear_nulls: Send ``None`` values as ``""``, which clears the property; by default they are left out.
        :raises CrmValidationError: When an input is malformed or lacks ``id_property``, before anything is sent.
        """
        return self._batch("upsert", inputs, clear_nulls=clear_nulls, need_id_property=True)

    def read_orders(
        self, ids: Sequence[str], *, id_property: str | None = None, properties: Sequence[str] = ()
    ) -> dict[str, HubSpotObject]:
        """Read many orders (batch read, 100 per request): ``{id: order}`` for the ids that exist.

        ``ids`` are internal ids, or values of the unique property ``id_property``.

        :param ids: The orders to read; repeats are read once.
        :param id_property: The unique property ``ids`` are values of; ``None`` (or ``hs_object_id``) for
            internal ids.
        :param properties: The property names to return (``id_property`` is always added).
        :return: The orders found, keyed by the id as given (matched ignoring case and surrounding spaces).
        """
        if id_property:
            checked_id_property(id_property, "HubSpot batch read")
        by_value = unique_id_property(id_property)
        wanted = list(dict.fromkeys(str(order_id) for order_id in ids))
        names = sorted({*properties, *([by_value] if by_value else [])})
        lookup = {order_id.strip().casefold(): order_id for order_id in wanted}
        path = api_path("crm", "v3", "objects", OBJECT_TYPE, "batch", "read")
        found: dict[str, HubSpotObject] = {}
        for start in range(0, len(wanted), BATCH_SIZE):
            body: dict[str, Any] = {
                "inputs": [{"id": order_id} for order_id in wanted[start : start + BATCH_SIZE]],
                "properties": names,
                "propertiesWithHistory": [],
            }
            if by_value:
                body["idProperty"] = by_value
            answer = require_json(self.transport.request("POST", path, json=body, idempotent=True), self.vendor)
            documents = answer.get("results") if isinstance(answer, dict) else None
            for document in documents or []:
                try:
                    obj = HubSpotObject.from_document(document)
                except ValueError:
                    continue
                key = obj.properties.get(by_value) if by_value else obj.id
                requested = lookup.get(str(key).strip().casefold()) if key is not None else None
                if requested is not None:
                    found[requested] = obj
        return found

    def _batch(
        self, action: str, inputs: Sequence[Mapping[str, Any]], *, clear_nulls: bool, need_id_property: bool
    ) -> BatchResult:
        prepared = [
            prepare_batch_input(index, item, clear_nulls=clear_nulls, need_id_property=need_id_property)
            for index, item in enumerate(inputs)
        ]
        path = api_path("crm", "v3", "objects", OBJECT_TYPE, "batch", action)

        def post(chunk: list[dict[str, Any]]) -> Any:
            # Batch update/upsert set the same values when repeated, so they are safe to retry.
            return require_json(
                self.transport.request("POST", path, json={"inputs": chunk}, idempotent=True), self.vendor
            )

        def read(ids: list[str], id_property: str | None, names: list[str]) -> dict[str, HubSpotObject]:
            return self.read_orders(ids, id_property=id_property, properties=names)

        run = BatchRun(prepared, upsert=action == "upsert", post=post, read=read, size=BATCH_SIZE)
        try:
            result = run.run()
        except BatchIncompleteError as exc:
            self._log_batch(action, exc.result)
            raise
        self._log_batch(action, result)
        return result

    def _log_batch(self, action: str, result: BatchResult) -> None:
        if result.isolation_requests:
            self.log.warning(
                "HubSpot refused batch %s request(s) whole (400); isolating the bad inputs took %d extra "
                "request(s) (%d in all); %d input(s) refused",
                action,
                result.isolation_requests,
                result.requests,
                len(result.errors),
            )
        if result.read_back:
            written = sum(1 for position in result.read_back if position in result.written)
            self.log.warning(
                "HubSpot's batch %s answer did not settle %d input(s); read back from HubSpot: %d written, %d not",
                action,
                len(result.read_back),
                written,
                len(result.read_back) - written,
            )

    # -- helpers ------------------------------------------------------------------------------

    def default_record_url(self, **ids: Any) -> str | None:
        """The order's record page, when the connection names the portal (extra ``portal_id``).

        :param ids: The record's ids; only ``id`` (the order's internal id) is used.
        """
        portal = self.extra("portal_id")
        if not portal or not ids.get("id"):
            return None
        app = str(self.extra("app_url", "https://app.hubspot.com")).rstrip("/")
        portal_id, order_id = quote(str(portal), safe=""), quote(str(ids["id"]), safe="")
        return f"{app}/contacts/{portal_id}/record/{ORDERS_OBJECT_TYPE_ID}/{order_id}"

    def probe(self) -> str:
        """List one order (``GET /crm/v3/objects/orders?limit=1``)."""
        self.transport.request("GET", api_path("crm", "v3", "objects", OBJECT_TYPE), params={"limit": 1})
        return f"Connected to HubSpot at {self.base_url()}; the token can read orders."

    def _object(self, response: requests.Response) -> HubSpotObject:
        try:
            return HubSpotObject.from_document(require_json(response, self.vendor))
        except ValueError as exc:
            raise CrmApiError(f"unexpected object document: {exc}", vendor=self.vendor) from None
