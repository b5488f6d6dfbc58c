"""Operator that updates a Kaiten customer, keeping the fields it is not told to change."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.lineage import RecordLineage
from airflow_provider_crm.links import CrmRecordLink, push_record_url
from airflow_provider_crm.models.kaiten import CLEARABLE_FIELDS, REPLACED_FIELDS, customer_record

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_crm.hooks.kaiten import KaitenHook


class KaitenUpdateCustomerOperator(RecordLineage, BaseOperator):
    """Update a Kaiten customer and return its slug.

    Kaiten's PUT replaces the whole customer (fields it does not carry are cleared). This
    operator reads the customer first and writes back its current values for every field left
    ``None``, so only what you pass changes. At least one change is required.

    :param customer_slug: The customer's slug. (templated)
    :param name: The new name. (templated)
    :param external_customer_id: The new external customer id. (templated)
    :param domain: The new domain. (templated)
    :param clear_fields: Fields to clear on purpose: ``"external_customer_id"`` and/or
        ``"domain"``. (templated)
    :param kaiten_conn_id: The Airflow connection to use (default ``kaiten_default``).
    """

    template_fields: Sequence[str] = (
        "customer_slug",
        "name",
        "external_customer_id",
        "domain",
        "clear_fields",
    )
    ui_color = "#eef7ee"
    operator_extra_links = (CrmRecordLink(),)

    def __init__(
        self,
        *,
        customer_slug: str,
        name: str | None = None,
        external_customer_id: str | None = None,
        domain: str | None = None,
        clear_fields: Sequence[str] | None = None,
        kaiten_conn_id: str = "kaiten_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer_slug = customer_slug
        self.name = name
        self.external_customer_id = external_customer_id
        self.domain = domain
        self.clear_fields = clear_fields
        self.kaiten_conn_id = kaiten_conn_id

    @cached_property
    def hook(self) -> KaitenHook:
        """The hook for ``kaiten_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.kaiten import KaitenHook

        return KaitenHook(kaiten_conn_id=self.kaiten_conn_id)

    def changes(self) -> dict[str, Any]:
        """The fields to change, with ``None`` for those to clear; checked before any request."""
        record = customer_record(self.customer_slug)
        given = {name: getattr(self, name) for name in REPLACED_FIELDS if getattr(self, name) is not None}
        to_clear = list(self.clear_fields or [])
        for field in to_clear:
            if field not in CLEARABLE_FIELDS:
                raise CrmValidationError(
                    f"{record}: clear_fields may name {', '.join(CLEARABLE_FIELDS)}, not {field!r}",
                    field="clear_fields",
                    record=record,
                )
            if field in given:
                raise CrmValidationError(
                    f"{record}: {field} is both given and listed in clear_fields", field=field, record=record
                )
        changes = given | dict.fromkeys(to_clear)
        if not changes:
            raise CrmValidationError(
                f"{record}: nothing to update; give name, external_customer_id, domain or clear_fields",
                record=record,
            )
        return changes

    def execute(self, context: Context) -> str:
        changes = self.changes()
        self.hook.merge_customer(self.customer_slug, **changes)
        push_record_url(context, self.hook.record_url(id=self.customer_slug, slug=self.customer_slug))
        self.log.info("Kaiten customer %s is updated (%s)", self.customer_slug, ", ".join(sorted(changes)))
        return self.customer_slug
