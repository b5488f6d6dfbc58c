"""Operator that updates a MicroBase customer with ``customer.update``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_crm.lineage import RecordLineage
from airflow_provider_crm.links import CrmRecordLink, push_record_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_crm.hooks.microbase import MicroBaseHook


class MicroBaseUpdateCustomerOperator(RecordLineage, BaseOperator):
    """Update a MicroBase customer and return its id.

    The new address is ``customer_email``, not ``email``: ``email`` is every Airflow operator's
    alert-recipient argument (and is filled from ``default_args``), so reusing it would send a
    customer's address to Airflow's failure e-mails, or an on-call list to MicroBase.

    Only the arguments given are sent. Input is checked before anything is sent: ``status``
    must be ``ACTIVE`` or ``INACTIVE``, ``email`` must look like an address, and empty strings
    are refused because MicroBase ignores them (it cannot clear a field). ``tags=[]`` clears
    the tags. Business errors (``customer_not_found``, ``duplicate_key``, ...) fail the task
    with a typed error and are never retried inside the task.

    :param customer_id: The customer's id. (templated)
    :param customer_email: The new e-mail address. (templated)
    :param first_name: The new first name. (templated)
    :param last_name: The new last name. (templated)
    :param status: ``ACTIVE`` or ``INACTIVE``. (templated)
    :param tags: The new tags, replacing the old ones. (templated)
    :param microbase_conn_id: The Airflow connection to use (default ``microbase_default``).
    """

    template_fields: Sequence[str] = (
        "customer_id",
        "customer_email",
        "first_name",
        "last_name",
        "status",
        "tags",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"tags": "json"}
    ui_color = "#fff4e6"
    operator_extra_links = (CrmRecordLink(),)

    def __init__(
        self,
        *,
        customer_id: str,
        customer_email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        status: str | None = None,
        tags: list[str] | None = None,
        microbase_conn_id: str = "microbase_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer_id = customer_id
        self.customer_email = customer_email
        self.first_name = first_name
        self.last_name = last_name
        self.status = status
        self.tags = tags
        self.microbase_conn_id = microbase_conn_id

    @cached_property
    def hook(self) -> MicroBaseHook:
        """The hook for ``microbase_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.microbase import MicroBaseHook

        return MicroBaseHook(microbase_conn_id=self.microbase_conn_id)

    def execute(self, context: Context) -> str:
        customer = self.hook.update_customer(
            self.customer_id,
            email=self.customer_email,
            first_name=self.first_name,
            last_name=self.last_name,
            status=self.status,
            tags=self.tags,
        )
        self.log.info("MicroBase customer %s is updated", customer.id)
        push_record_url(context, self.hook.record_url(id=customer.id))
        return customer.id
