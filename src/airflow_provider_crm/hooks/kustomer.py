"""Kustomer: create, update, upsert (by external id) and look up KObjects (custom objects)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from typing_extensions import Unpack

from airflow_provider_crm.errors import (
    CrmApiError,
    CrmBadRequestError,
    CrmConfigurationError,
    CrmConflictError,
    CrmNotFoundError,
    CrmOutcomeUnknownError,
    CrmPermissionError,
    restated,
)
from airflow_provider_crm.hooks.base import CrmHook
from airflow_provider_crm.models.kustomer import KObject
from airflow_provider_crm.models.kustomer_bulk import (
    BULK_READ_ROLES,
    BulkBatch,
    BulkJob,
    batches_from_response,
    bulk_create_items,
    bulk_update_items,
)
from airflow_provider_crm.models.kustomer_requests import (
    KObjectCreateFields,
    KObjectCreateRequest,
    KObjectUpdateFields,
    KObjectUpdateRequest,
    KObjectUpsertFields,
)
from airflow_provider_crm.models.kustomer_upsert import (
    CREATE,
    UNCHANGED,
    KObjectUpsert,
    Result,
    UpsertPlan,
    plan_upsert,
)
from airflow_provider_crm.models.values import aware_datetime
from airflow_provider_crm.transport import Problem, Raw, VendorRules, api_path, escape_segment, json_or_none
from airflow_provider_crm.transport.paths import segment
from airflow_provider_crm.transport.rules import require_json
from airflow_provider_crm.transport.waits import parse_reset

log = logging.getLogger(__name__)

REGION_HOSTS = {
    "us": "https://api.kustomerapp.com",
    "eu": "https://api.prod2.kustomerapp.com",
    "in": "https://api.prod4.kustomerapp.com",
}
_REGION_ALIASES = {"india": "in", "prod1": "us", "prod2": "eu", "prod4": "in"}
UPSERT_ROUNDS = 3
"""Lookup-and-write rounds an upsert tries when the object changes in between (created, deleted)."""
_Read = TypeVar("_Read")
NO_SUCH_JOB = "000000000000000000000000"
"""A job id no job has: the connection check asks for it when the token record lists no roles."""


class KustomerRules(VendorRules):
    """Kustomer's error envelopes and rate-limit signals."""

    vendor = "Kustomer"
    rate_limit_default_wait = 60.0
    """Kustomer's window is one minute; with no hint, wait for it to roll over."""

    def advertised_rate(self, response: requests.Response) -> float | None:
        """``x-ratelimit-limit`` is the org's budget per minute, shared by every key and app user.

        Kustomer: "All API requests from your org count toward one shared budget, measured over 60
        seconds", shown as ``x-ratelimit-limit: 1000`` on Enterprise
        (developer.kustomer.com/docs/concepts/rate-limits); "your current rate limit
        (x-ratelimit-limit)" is in the headers of most APIs (help.kustomer.com/api-rate-limits-Sk2xoQgYX).
        Whether other budgets (search by API keys: 100 a minute) are advertised in the same header is
        not documented; the limiter follows whatever the latest answer says.
        """
        try:
            limit = float(response.headers.get("x-ratelimit-limit", ""))
        except ValueError:
            return None
        return limit / 60.0

    def pause_after(self, response: requests.Response) -> float:
        """When ``x-ratelimit-remaining`` reaches 0, wait for the window to reset before sending more."""
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is None or response.status_code == 429:
            return 0.0
        try:
            exhausted = float(remaining) <= 0
        except ValueError:
            return 0.0
        return (parse_reset(response.headers.get("x-ratelimit-reset")) or 1.0) if exhausted else 0.0

    def parse_problem(self, response: requests.Response) -> Problem:
        """Read either error shape: ``{errors: [{code, message, meta}]}`` or JSON:API errors.

        The error class comes from the HTTP status, never from ``errors[].status``: Kustomer's
        OpenAPI types that field as a string (``"404"``) while the kustomer-client SDK reads it
        as a number, so either form (or none) gives the same error; the items stay in ``details``.
        """
        body = json_or_none(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not errors:
            return super().parse_problem(response)
        messages = []
        for item in errors[:5]:
            if not isinstance(item, dict):
                continue
            text = item.get("detail") or item.get("message") or item.get("title") or ""
            pointer = (item.get("source") or {}).get("pointer") if isinstance(item.get("source"), dict) else None
            messages.append(f"{text} ({pointer})" if pointer else str(text))
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = first.get("code")
        return Problem(
            message="; ".join(m for m in messages if m) or response.reason or "error",
            code=str(code) if code is not None else None,
            details=errors,
        )


class KustomerHook(CrmHook):
    """Talks to the Kustomer REST API with an API key.

    Connection: password = API key; host = base URL (``https://<org>.api.kustomerapp.com``
    recommended; no scheme means https). With no host, extra ``region`` (``us`` default, ``eu``,
    ``in``) picks the regional host.

    :param kustomer_conn_id: The Airflow connection to use (default ``kustomer_default``).
    """

    conn_type = "kustomer"
    conn_name_attr = "kustomer_conn_id"
    default_conn_name = "kustomer_default"
    hook_name = "Kustomer"
    vendor_rules = KustomerRules()
    default_rate_limit = 1000 / 60
    """Kustomer's Enterprise org-wide budget, 1,000 requests a minute (shared by all keys)."""

    def __init__(self, kustomer_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=kustomer_conn_id, **kwargs)

    def base_url(self) -> str:
        """The connection's host; without one, the host of extra ``region`` (``us`` default, ``eu``, ``in``)."""
        host = (self.connection.host or "").strip()
        if host:
            return self.checked_url(host)
        region = str(self.extra("region", "us")).strip().lower()
        region = _REGION_ALIASES.get(region, region)
        if region not in REGION_HOSTS:
            raise CrmConfigurationError(
                f"Kustomer: connection {self.conn_id!r} has unknown region {region!r}; "
                f"use one of {', '.join(REGION_HOSTS)} or set the host"
            )
        return REGION_HOSTS[region]

    # -- reads --------------------------------------------------------------------------------

    def get_kobject(self, klass_name: str, kobject_id: str) -> KObject:
        """Read a KObject by id; raises :class:`CrmNotFoundError` when it does not exist.

        :param klass_name: The klass (custom object type) the KObject belongs to, e.g. ``order``.
        :param kobject_id: Kustomer's id of the KObject.
        """
        return self._parse(self.transport.request("GET", _kobject_path(klass_name, kobject_id)))

    def find_kobject_by_external_id(self, klass_name: str, external_id: str) -> KObject | None:
        """The KObject with this external id in the klass, or ``None`` when there is none.

        :param klass_name: The klass to look in.
        :param external_id: The ``externalId`` to look up.
        """
        response = self._lookup(klass_name, external_id)
        return None if response is None else self._parse(response)

    def _lookup(self, klass_name: str, external_id: str) -> requests.Response | None:
        by_external_id = Raw("externalId=" + escape_segment(external_id, name="external_id"))
        path = api_path("v1", "klasses", segment(klass_name, "klass_name"), by_external_id)
        try:
            return self.transport.request("GET", path)
        except CrmNotFoundError:
            return None

    # -- writes -------------------------------------------------------------------------------

    def create_or_get_kobject(
        self, klass_name: str, *, title: str, **fields: Unpack[KObjectCreateFields]
    ) -> tuple[KObject, bool]:
        """Create a KObject, never twice; also say whether this call created it.

        Fields are those of :class:`~airflow_provider_crm.models.kustomer.KObjectCreate`; those
        left ``None`` are not sent. With ``external_id`` an unknown outcome (connection lost after
        sending, timeout, 5xx) is resolved by looking the record up before sending again, and a 409
        for an external id that already exists returns the stored record. Without it, an unknown
        outcome raises :class:`~airflow_provider_crm.errors.CrmOutcomeUnknownError` rather than
        risk a duplicate. ``customer_id`` links the object to a customer (it goes in the path),
        ``company_id`` to a company. ``created_at``/``imported_at`` are date-times (aware
        ``datetime`` or ISO 8601 with an offset); Kustomer exempts creates with ``importedAt``
        from its per-customer create limit.

        :param klass_name: The klass to create the KObject in.
        :param title: The KObject's title, 1 to 256 characters.
        :param fields: The KObject's other fields (see
            :class:`~airflow_provider_crm.models.kustomer_requests.KObjectCreateFields`).
        :return: The KObject, and ``True`` if this call created it (``False``: the stored one with the external id).
        :raises CrmValidationError: When a field is invalid, before anything is sent.
        """
        return self.write_create(KObjectCreateRequest.build(klass_name, title=title, **fields))

    def create_kobject(self, klass_name: str, *, title: str, **fields: Unpack[KObjectCreateFields]) -> KObject:
        """Create a KObject, never twice (see :meth:`create_or_get_kobject`).

        :param klass_name: The klass to create the KObject in.
        :param title: The KObject's title, 1 to 256 characters.
        :param fields: The KObject's other fields (see
            :class:`~airflow_provider_crm.models.kustomer_requests.KObjectCreateFields`).
        """
        kobject, _ = self.create_or_get_kobject(klass_name, title=title, **fields)
        return kobject

    def write_create(self, request: KObjectCreateRequest) -> tuple[KObject, bool]:
        """Carry out a validated create (see :meth:`create_or_get_kobject`).

        :param request: The create, from :meth:`KObjectCreateRequest.build
            <airflow_provider_crm.models.kustomer_requests.KObjectCreateRequest.build>`.
        :return: As :meth:`create_or_get_kobject`.
        """
        klass_name, external_id = request.klass_name, request.external_id
        reconcile = (lambda: self._lookup(klass_name, external_id)) if external_id else None
        try:
            response = self._post_create(klass_name, request.customer_id, request.body, reconcile)
        except CrmOutcomeUnknownError as exc:
            raise CrmOutcomeUnknownError(
                f"{request.label}: {exc} Give the record an external_id so that a retry can look it up "
                "instead of risking a duplicate.",
                vendor=self.vendor,
                cause=exc.cause,
            ) from exc
        except CrmConflictError:
            if not external_id or (existing := self._lookup(klass_name, external_id)) is None:
                raise
            log.warning("%s: the external id already exists; returning the stored KObject", request.label)
            return self._parse(existing), False
        return self._parse(response), True

    def update_kobject(self, klass_name: str, kobject_id: str, **fields: Unpack[KObjectUpdateFields]) -> KObject:
        """Update a KObject with PUT; fields left ``None`` are not sent.

        Fields are those of :class:`~airflow_provider_crm.models.kustomer.KObjectUpdate`.

        ``rev`` is the revision last read (``KObject.rev``): Kustomer then refuses the update
        with 409 when the object changed in between. A 409 is raised as
        :class:`~airflow_provider_crm.errors.CrmConflictError` naming ``rev`` and is never
        resent: resending the same stale revision cannot succeed. For the same reason an update
        with ``rev`` whose outcome is unknown (5xx, connection lost after sending) is not simply
        resent: the object is read first. Still at ``rev``: not applied, sent again. At ``rev + 1``
        holding the values sent: applied, that state is returned. Anything else:
        :class:`~airflow_provider_crm.errors.CrmOutcomeUnknownError`.

        :param klass_name: The klass the KObject belongs to.
        :param kobject_id: Kustomer's id of the KObject.
        :param fields: The fields to change, ``rev`` included (see
            :class:`~airflow_provider_crm.models.kustomer_requests.KObjectUpdateFields`).
        :return: The KObject as stored after the update.
        """
        return self.write_update(KObjectUpdateRequest.build(klass_name, kobject_id, **fields))

    def write_update(self, request: KObjectUpdateRequest) -> KObject:
        """Carry out a validated update (see :meth:`update_kobject`).

        :param request: The update, from :meth:`KObjectUpdateRequest.build
            <airflow_provider_crm.models.kustomer_requests.KObjectUpdateRequest.build>`.
        """
        path = _kobject_path(request.klass_name, request.kobject_id)
        body, rev, record = request.body, request.rev, request.label
        reconcile = None if rev is None else (lambda: self._applied_at_next_rev(path, body, rev, record))
        try:
            response = self.transport.request("PUT", path, json=body, idempotent=rev is None, reconcile=reconcile)
        except CrmConflictError as exc:
            raise _update_conflict(exc, record, rev) from exc
        return self._parse(response)

    # -- upsert -------------------------------------------------------------------------------

    def upsert_kobject(
        self, klass_name: str, external_id: str, *, title: str, **fields: Unpack[KObjectUpsertFields]
    ) -> tuple[KObject, Result]:
        """Create the KObject with this external id, or update the one that has it; say which.

        Kustomer has no upsert endpoint: this looks the external id up, then sends a ``PUT`` by id
        (``"updated"``), a ``POST`` (``"created"``) or nothing when the stored object already holds
        every value (``"unchanged"``): one or two requests per record. A create that meets the
        external id (created by someone else since the lookup) becomes an update, without a second
        create. Safe to retry: a create whose outcome is unknown is looked up before it is sent
        again, and an update is an idempotent ``PUT``. ``customer_id`` and ``company_id`` link a
        new object only: Kustomer's update takes neither. Arguments as :meth:`create_or_get_kobject`.

        :param klass_name: The klass of the KObject.
        :param external_id: The ``externalId`` the KObject is found by (a non-empty string).
        :param title: The KObject's title, 1 to 256 characters.
        :param fields: The KObject's other fields (see
            :class:`~airflow_provider_crm.models.kustomer_requests.KObjectUpsertFields`).
        :return: The KObject as stored, and ``"created"``, ``"updated"`` or ``"unchanged"``.
        :raises CrmConflictError: When the KObject kept changing between lookup and write (:data:`UPSERT_ROUNDS`
            rounds).
        """
        return self.write_upsert(KObjectUpsert.build(klass_name, external_id, title=title, **fields))

    def preview_upsert(self, request: KObjectUpsert) -> tuple[UpsertPlan, KObject | None]:
        """Look the record up and plan it, sending nothing else: the plan and the stored object.

        :param request: The upsert, from :meth:`KObjectUpsert.build
            <airflow_provider_crm.models.kustomer_upsert.KObjectUpsert.build>`.
        :return: The plan, and the stored KObject (``None`` when the external id is not found).
        """
        stored = self.find_kobject_by_external_id(request.klass_name, request.external_id)
        return plan_upsert(request, stored), stored

    def write_upsert(self, request: KObjectUpsert) -> tuple[KObject, Result]:
        """Carry out a validated upsert (see :meth:`upsert_kobject`).

        :param request: The upsert, from :meth:`KObjectUpsert.build
            <airflow_provider_crm.models.kustomer_upsert.KObjectUpsert.build>`.
        :return: As :meth:`upsert_kobject`.
        """
        plan, stored = self.preview_upsert(request)
        for _ in range(UPSERT_ROUNDS):
            if plan.action == UNCHANGED:
                assert stored is not None
                return stored, "unchanged"
            if plan.action == CREATE:
                try:
                    kobject, reconciled = self._create_for_upsert(request)
                except (CrmConflictError, CrmBadRequestError):
                    # Kustomer keeps external ids unique per klass; which answer a duplicate gets is
                    # not documented (409 is assumed), so a refused create is checked by a lookup.
                    stored = self.find_kobject_by_external_id(request.klass_name, request.external_id)
                    if stored is None:
                        raise
                    log.warning("%s: the external id was created meanwhile; updating it instead", request.label)
                    plan = plan_upsert(request, stored)
                    continue
                if not reconciled:
                    return kobject, "created"
                # The create's answer was lost and the lookup found the object: ours, unless it
                # lacks our values (then another writer created it, and it is updated).
                plan = plan_upsert(request, kobject)
                if plan.action == UNCHANGED:
                    return kobject, "created"
                stored = kobject
                continue
            assert plan.kobject_id is not None
            try:
                return self._put(request.klass_name, plan.kobject_id, plan.body, request.label), "updated"
            except CrmNotFoundError:
                # Deleted since the lookup: look again (and create it if it is gone).
                stored = self.find_kobject_by_external_id(request.klass_name, request.external_id)
                plan = plan_upsert(request, stored)
        raise CrmConflictError(
            f"{request.label}: the KObject kept changing between lookup and write ({UPSERT_ROUNDS} rounds); "
            "try again later",
            vendor=self.vendor,
        )

    def _create_for_upsert(self, request: KObjectUpsert) -> tuple[KObject, bool]:
        """POST the create body; also say whether the answer came from a lookup after a lost answer."""
        found: list[requests.Response] = []

        def reconcile() -> requests.Response | None:
            response = self._lookup(request.klass_name, request.external_id)
            found.extend([response] if response is not None else [])
            return response

        response = self._post_create(request.klass_name, request.customer_id, request.create_body, reconcile)
        return self._parse(response), any(response is lookup for lookup in found)

    def _post_create(
        self,
        klass_name: str,
        customer_id: str | None,
        body: dict[str, Any],
        reconcile: Callable[[], requests.Response | None] | None,
    ) -> requests.Response:
        """``POST`` a create body; a customer link goes in the path (``/v1/customers/{id}/klasses/{name}``)."""
        klass = segment(klass_name, "klass_name")
        if customer_id is not None:
            path = api_path("v1", "customers", segment(customer_id, "customer_id"), "klasses", klass)
        else:
            path = api_path("v1", "klasses", klass)
        return self.transport.request("POST", path, json=body, reconcile=reconcile)

    def _put(self, klass_name: str, kobject_id: str, body: dict[str, Any], record: str) -> KObject:
        try:
            response = self.transport.request("PUT", _kobject_path(klass_name, kobject_id), json=body)
        except CrmConflictError as exc:
            raise _update_conflict(exc, record, None) from exc
        return self._parse(response)

    def _applied_at_next_rev(self, path: str, body: dict[str, Any], rev: int, record: str) -> requests.Response | None:
        """After an unknown outcome of an update with ``rev``: the stored object if it was applied,
        ``None`` if it was not (safe to resend); raise when the object moved on otherwise."""
        response = self.transport.request("GET", path)
        current = self._parse(response)
        if current.rev == rev:
            return None
        attributes = (current.raw.get("data") or {}).get("attributes") or {}
        if current.rev == rev + 1 and _holds(attributes, body):
            return response
        raise CrmOutcomeUnknownError(
            f"{record}: the update with rev {rev} got no answer, and the KObject is now at rev {current.rev} "
            "without the values sent: another change came in between, so this one was most likely refused as "
            "stale. Read the object again and decide.",
            vendor=self.vendor,
        )

    # -- bulk jobs ----------------------------------------------------------------------------

    def submit_bulk_create(self, klass_name: str, creates: Mapping[str, KObjectCreateRequest]) -> BulkJob:
        """Submit up to 100 validated creates as one bulk job: ``POST /v1/klasses/{name}/bulk``, one request.

        Each item carries its client ref as ``_clientRef`` (its result comes back under it, see
        :meth:`get_bulk_results`) and, when linked to a customer, ``customer`` in its body. A submit
        is sent once and never again: a second one would be a second job (for creates, duplicates).
        So when its outcome is unknown (connection lost after sending, timeout, 5xx, an answer without
        a job id) it raises :class:`~airflow_provider_crm.errors.CrmOutcomeUnknownError`; look the
        records up by external id (Kustomer's own advice for bulk creates) before sending them again.
        A 429, or a request that provably never left, is resent like any other.

        :param klass_name: The klass the KObjects are created in.
        :param creates: Validated creates (:meth:`KObjectCreateRequest.build
            <airflow_provider_crm.models.kustomer_requests.KObjectCreateRequest.build>`) by client ref.
        :return: The job Kustomer answered (usually ``queued``); poll it with :meth:`get_bulk`.
        :raises CrmValidationError: With no items or more than 100, before anything is sent.
        """
        return self._submit_bulk("POST", klass_name, bulk_create_items(klass_name, creates))

    def submit_bulk_update(self, klass_name: str, updates: Mapping[str, KObjectUpdateRequest]) -> BulkJob:
        """Submit up to 100 validated updates as one bulk job: ``PUT /v1/klasses/{name}/bulk``, one request.

        Each item is the update's body with ``id`` and ``_clientRef``; a ``rev`` in it is checked by
        Kustomer per item. Sent once and never again, as :meth:`submit_bulk_create` (a ``PUT``, but the
        job it creates is new each time).

        :param klass_name: The klass of the KObjects.
        :param updates: Validated updates (:meth:`KObjectUpdateRequest.build
            <airflow_provider_crm.models.kustomer_requests.KObjectUpdateRequest.build>`) by client ref.
        :return: The job Kustomer answered; poll it with :meth:`get_bulk`.
        :raises CrmValidationError: With no items or more than 100, before anything is sent.
        """
        return self._submit_bulk("PUT", klass_name, bulk_update_items(klass_name, updates))

    def get_bulk(self, job_id: str) -> BulkJob:
        """The job's progress (``GET /v1/bulk/{id}``): ``queued``, ``running``, ``complete`` (``done``).

        Needs the role ``org.permission.bulk.read`` (or legacy ``org.user.bulk.read``); without it
        Kustomer answers 403 (:class:`~airflow_provider_crm.errors.CrmPermissionError`).

        :param job_id: The id :meth:`submit_bulk_create` or :meth:`submit_bulk_update` returned.
        :raises CrmNotFoundError: When no job has this id.
        """
        return self._read_bulk(job_id, BulkJob.from_response)

    def get_bulk_results(self, job_id: str) -> list[BulkBatch]:
        """The job's batches (``GET /v1/bulk/{id}/batches``) with each item's result by client ref.

        Read once the job is ``done``. Each batch has ``results`` only for items sent with a client
        ref (every item this hook submits has one);
        :func:`~airflow_provider_crm.models.kustomer_bulk.results_by_client_ref` gathers them across
        batches, with the new object's id or Kustomer's message. Needs the same role as :meth:`get_bulk`.

        :param job_id: The job's id.
        :raises CrmNotFoundError: When no job has this id.
        """
        return self._read_bulk(job_id, batches_from_response, "batches")

    def _read_bulk(self, job_id: str, parse: Callable[[Any], _Read], *tail: str) -> _Read:
        """``GET /v1/bulk/{id}[/tail]``, parsed; an answer that does not parse is a vendor error."""
        response = self.transport.request("GET", bulk_job_path(job_id, *tail))
        try:
            return parse(require_json(response, self.vendor))
        except ValueError as exc:
            raise CrmApiError(f"bulk job {job_id!r}: {exc}", vendor=self.vendor, status=response.status_code) from None

    def _submit_bulk(self, method: str, klass_name: str, items: list[dict[str, Any]]) -> BulkJob:
        """Send a bulk body once; any doubt about whether the job exists is an unknown outcome."""
        path = api_path("v1", "klasses", segment(klass_name, "klass_name"), "bulk")
        kind = "create" if method == "POST" else "update"
        what = f"bulk {kind} of {len(items)} item(s) in klass {klass_name!r}"
        advice = (
            "It was not sent again: a second submit would be a second job. Look the records up by external id "
            "before submitting them again."
        )
        try:
            response = self.transport.request(method, path, json=items, idempotent=False)
        except CrmOutcomeUnknownError as exc:
            raise CrmOutcomeUnknownError(
                f"{what}: the job may or may not exist ({exc}). {advice}", vendor=self.vendor, cause=exc.cause
            ) from exc
        try:
            return BulkJob.from_response(require_json(response, self.vendor))
        except (ValueError, CrmApiError) as exc:
            raise CrmOutcomeUnknownError(
                f"{what}: answered {response.status_code} without a readable job id ({exc}), so the job may exist "
                f"but cannot be followed. {advice}",
                vendor=self.vendor,
                cause=exc,
            ) from exc

    # -- helpers ------------------------------------------------------------------------------

    def default_record_url(self, **ids: Any) -> str | None:
        """With an org host (``<org>.api.kustomerapp.com``): the linked customer's timeline, where
        Kustomer shows its KObjects. Other pages need ``record_url_template``.

        :param ids: The record's ids; only ``customer_id`` is used (no link without it).
        """
        host = urlsplit(self.base_url()).hostname or ""
        org, _, rest = host.partition(".")
        if rest != "api.kustomerapp.com" or not ids.get("customer_id"):
            return None
        return f"https://{org}.kustomerapp.com/app/customers/{quote(str(ids['customer_id']), safe='')}"

    def probe(self) -> str:
        """Read the API key's own token record (``GET /v1/auth/tokens/current``), count its roles, and
        check that the key may follow bulk jobs.

        A bulk job can be submitted without ``org.permission.bulk.read`` (or legacy
        ``org.user.bulk.read``) but neither polled nor read back, so the check fails naming the role.
        The record's roles are checked by name; a record that lists none makes the check ask for a
        job no one has (:data:`NO_SUCH_JOB`): only a 403 proves the role missing.
        """
        response = self.transport.request("GET", api_path("v1", "auth", "tokens", "current"))
        body = json_or_none(response) or {}
        data = body.get("data") if isinstance(body, dict) else None
        roles = (data or {}).get("attributes", {}).get("roles") if isinstance(data, dict) else None
        self._check_bulk_read(roles if isinstance(roles, list) else None)
        detail = f" with {len(roles)} role(s)" if isinstance(roles, list) else ""
        return f"Connected to Kustomer at {self.base_url()}; the API key is valid{detail}."

    def _check_bulk_read(self, roles: list[Any] | None) -> None:
        """Raise :class:`~airflow_provider_crm.errors.CrmPermissionError` naming the role when the key lacks it."""
        missing = (
            f"the API key lacks the role {BULK_READ_ROLES[0]} (or legacy {BULK_READ_ROLES[1]}), which bulk jobs "
            "need: they could be submitted but not followed to their results. Add the role to the key, or write "
            "record by record"
        )
        if roles is not None:
            if not any(role in BULK_READ_ROLES for role in roles):
                raise CrmPermissionError(missing, vendor=self.vendor, conn_id=self.conn_id)
            return
        try:
            self.transport.request("GET", api_path("v1", "bulk", NO_SUCH_JOB))
        except (CrmNotFoundError, CrmBadRequestError):
            return
        except CrmPermissionError as exc:
            raise restated(exc, f"{missing}. Kustomer said: {exc.message}") from exc

    def _parse(self, response: requests.Response) -> KObject:
        body = require_json(response, self.vendor)
        try:
            return KObject.from_response(body)
        except (KeyError, ValueError, TypeError) as exc:
            raise CrmApiError(
                f"unexpected KObject document: {exc}", vendor=self.vendor, status=response.status_code
            ) from None


def bulk_job_path(job_id: str, *tail: str) -> str:
    """``/v1/bulk/{id}[/tail]``, where a job (or its batches) is read; also used by the triggerer's polls.

    :param job_id: The job's id, escaped as one path segment.
    :param tail: Literal segments after the id, e.g. ``"batches"``.
    :raises CrmValidationError: When the id is empty or a dot segment.
    """
    return api_path("v1", "bulk", segment(job_id, "job_id"), *tail)


def _kobject_path(klass_name: str, kobject_id: str) -> str:
    return api_path("v1", "klasses", segment(klass_name, "klass_name"), segment(kobject_id, "kobject_id"))


def _holds(attributes: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether a stored KObject shows every value an update sent (fields it doesn't return are skipped)."""
    for name, sent in body.items():
        if name == "rev" or name not in attributes:
            continue
        held = attributes[name]
        if name == "custom" and isinstance(sent, dict) and isinstance(held, dict):
            if not all(_same(value, held.get(key)) for key, value in sent.items()):
                return False
        elif not _same(sent, held):
            return False
    return True


def _same(sent: Any, held: Any) -> bool:
    """Equal, or the same instant written two ways (the hook sends date-times in UTC)."""
    if sent == held:
        return True
    if isinstance(sent, str) and isinstance(held, str):
        try:
            return bool(aware_datetime(sent) == aware_datetime(held))
        except ValueError:
            return False
    return False


def _update_conflict(error: CrmConflictError, record: str, rev: int | None) -> CrmApiError:
    """A 409 on update, explained: Kustomer uses 409 for optimistic locking on ``rev``."""
    if rev is not None:
        reason = (
            f"rev {rev} is stale: the KObject changed since that revision was read. Read it again "
            "(KObject.rev) and send the update with the current rev"
        )
    else:
        reason = (
            "Kustomer reports a conflict (409 is its answer to a stale rev, optimistic locking, or to an "
            "externalId another KObject already holds)"
        )
    return restated(error, f"{record}: {reason}. Kustomer said: {error.message}", CrmConflictError)
