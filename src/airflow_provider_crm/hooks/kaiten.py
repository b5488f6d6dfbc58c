"""Kaiten (kaiten.sh): read and update customers through the Core API."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_crm.errors import CrmApiError, CrmConfigurationError
from airflow_provider_crm.hooks.base import CrmHook
from airflow_provider_crm.models.kaiten import (
    CustomerReplacement,
    CustomerSlug,
    KaitenCustomer,
    customer_record,
    validate_changes,
)
from airflow_provider_crm.models.validation import validate_model
from airflow_provider_crm.transport import Problem, VendorRules, api_path, json_or_none, require_json

REFUSED_CREDENTIAL_PREFIXES = {
    "ksm_": "a Kaiten platform credential (ksm_...), which the Core API refuses",
    "whsec_": "a webhook signing secret (whsec_...), not an API credential",
}

UNSET: Any = object()
"""Marks a field the caller did not mention (``None`` is a value: "clear it")."""


class KaitenRules(VendorRules):
    """Kaiten answers errors as RFC 9457 ``application/problem+json``."""

    vendor = "Kaiten"

    def parse_problem(self, response: requests.Response) -> Problem:
        body = json_or_none(response)
        if not isinstance(body, dict):
            return super().parse_problem(response)
        title = body.get("title") or response.reason or "error"
        parts = [str(title)]
        if body.get("detail"):
            parts.append(str(body["detail"]))
        for item in (body.get("errors") or [])[:5]:
            if isinstance(item, dict):
                parts.append(f"{item.get('location', '?')}: {item.get('message', '')}".strip())
        code = body.get("code")
        error_id = body.get("errorId")
        return Problem(
            message="; ".join(parts),
            code=str(code) if code else None,
            request_id=str(error_id) if error_id else None,
            details=body,
        )


class KaitenHook(CrmHook):
    """Talks to a Kaiten deployment's Core API with an access token.

    Connection: host = the deployment's base URL (required; ``/api`` is appended when missing,
    as Kaiten's own SDK does); password = an access token (``ksh_...``) with ``write:customers``.

    :param kaiten_conn_id: The Airflow connection to use (default ``kaiten_default``).
    """

    conn_type = "kaiten"
    conn_name_attr = "kaiten_conn_id"
    default_conn_name = "kaiten_default"
    hook_name = "Kaiten"
    vendor_rules = KaitenRules()

    def __init__(self, kaiten_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=kaiten_conn_id, **kwargs)

    def base_url(self) -> str:
        """The connection's host, with ``/api`` appended when missing."""
        url = self.checked_url(self.connection.host or "")
        return url if url.endswith("/api") else f"{url}/api"

    def token(self) -> str:
        """The access token in the password; refuses platform credentials (``ksm_``) and webhook secrets."""
        token = super().token()
        for prefix, what in REFUSED_CREDENTIAL_PREFIXES.items():
            if token.startswith(prefix):
                raise CrmConfigurationError(
                    f"Kaiten: connection {self.conn_id!r} holds {what}; use an access token (ksh_...) "
                    "from Integrations → Service Accounts"
                )
        return token

    def get_customer(self, slug: str) -> KaitenCustomer:
        """Read a customer; raises :class:`~airflow_provider_crm.errors.CrmNotFoundError` if absent.

        :param slug: The customer's slug: 2 to 100 characters of ``a-z``, ``0-9`` and ``-``, alphanumeric at both ends.
        :raises CrmValidationError: When the slug is malformed, before anything is sent.
        """
        checked = _checked_slug(slug)
        body = require_json(self.transport.request("GET", api_path("customers", checked)), self.vendor)
        try:
            return KaitenCustomer.from_document(body, slug=checked)
        except ValueError as exc:
            raise CrmApiError(f"unexpected customer document: {exc}", vendor=self.vendor) from None

    def update_customer(
        self, slug: str, *, name: str, external_customer_id: str | None = None, domain: str | None = None
    ) -> None:
        """Replace the customer's fields with PUT (Kaiten answers 204).

        This is Kaiten's own full-replacement semantics: ``external_customer_id`` and ``domain``
        left ``None`` are cleared. Use :meth:`merge_customer` to change only some fields.

        :param slug: The customer's slug (as for :meth:`get_customer`).
        :param name: The customer's name (required, not empty).
        :param external_customer_id: Your id for the customer (not empty); ``None`` clears it.
        :param domain: The customer's domain, lower case with at least one dot (``acme.com``); ``None`` clears it.
        :raises CrmValidationError: When a value is invalid, before anything is sent.
        """
        body = validate_model(
            CustomerReplacement,
            {"name": name, "external_customer_id": external_customer_id, "domain": domain},
            record=customer_record(slug),
        ).to_body()
        self.transport.request("PUT", api_path("customers", _checked_slug(slug)), json=body)

    def plan_merge(self, slug: str, changes: dict[str, Any]) -> tuple[KaitenCustomer, dict[str, Any]]:
        """Read the customer and return it with the full field set after applying ``changes``.

        ``changes`` maps ``name``/``external_customer_id``/``domain`` to new values (``None``
        clears; ``name`` cannot be cleared). They are validated before the read is sent.

        :param slug: The customer's slug (as for :meth:`get_customer`).
        :param changes: The new values by field name; at least one.
        :return: The customer as read, and the ``name``/``external_customer_id``/``domain`` values to PUT.
        :raises CrmValidationError: When ``changes`` is empty, names another field or holds an invalid value.
        """
        checked = validate_changes(slug, changes)
        current = self.get_customer(slug)
        return current, current.replaced_fields() | checked

    def merge_customer(
        self,
        slug: str,
        *,
        name: Any = UNSET,
        external_customer_id: Any = UNSET,
        domain: Any = UNSET,
    ) -> KaitenCustomer:
        """Change only the given fields: read the customer, merge, write it back whole.

        A field left :data:`UNSET` keeps its current value; ``None`` clears it (``name`` cannot
        be cleared). When nothing would change, nothing is written. Returns the customer as
        written. The read and the write are two requests, so a change made by someone else in
        between is overwritten (Kaiten offers no conditional update).

        :param slug: The customer's slug (as for :meth:`get_customer`).
        :param name: The new name.
        :param external_customer_id: The new external customer id, or ``None`` to clear it.
        :param domain: The new domain (lower case, with at least one dot), or ``None`` to clear it.
        :raises CrmValidationError: When no field is given or a value is invalid, before anything is sent.
        """
        changes = {"name": name, "external_customer_id": external_customer_id, "domain": domain}
        current, merged = self.plan_merge(slug, {k: v for k, v in changes.items() if v is not UNSET})
        if merged != current.replaced_fields():
            self.update_customer(slug, **merged)
        return current.model_copy(update=merged)

    def probe(self) -> str:
        """List one customer (``GET /customers?limit=1``)."""
        self.transport.request("GET", api_path("customers"), params={"limit": 1})
        return f"Connected to Kaiten at {self.base_url()}; the token can read customers."


def _checked_slug(slug: Any) -> str:
    model = validate_model(CustomerSlug, {"customer_slug": slug}, record=customer_record(slug))
    return model.customer_slug
