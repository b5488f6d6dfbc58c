"""Operator that patches a HubSpot order and returns its internal id."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_crm.lineage import RecordLineage
from airflow_provider_crm.links import CrmRecordLink, push_record_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_crm.hooks.hubspot import HubSpotHook


class HubSpotUpdateOrderOperator(RecordLineage, BaseOperator):
    """Update properties of a HubSpot order (PATCH) and return the order's internal id.

    Either way ``order_id`` is given, the returned id is HubSpot's internal one, read from the
    response. Python values in ``properties`` are serialised to HubSpot's formats (see the
    README); ``None`` values are left out so upstream nulls don't wipe CRM data, unless
    ``clear_nulls=True``.

    :param order_id: The order's internal id, or the value of the unique property named by
        ``id_property``. (templated)
    :param properties: Property names and the values to set. (templated)
    :param id_property: A unique property (e.g. ``hs_external_order_id``) that ``order_id`` is a
        value of. (templated)
    :param clear_nulls: Send ``None`` values as ``""``, which clears the property.
    :param hubspot_conn_id: The Airflow connection to use (default ``hubspot_default``).
    """

    template_fields: Sequence[str] = ("order_id", "properties", "id_property")
    template_fields_renderers: ClassVar[dict[str, str]] = {"properties": "json"}
    ui_color = "#fff0ec"
    operator_extra_links = (CrmRecordLink(),)

    def __init__(
        self,
        *,
        order_id: str,
        properties: dict[str, Any],
        id_property: str | None = None,
        clear_nulls: bool = False,
        hubspot_conn_id: str = "hubspot_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order_id = order_id
        self.properties = properties
        self.id_property = id_property
        self.clear_nulls = clear_nulls
        self.hubspot_conn_id = hubspot_conn_id

    @cached_property
    def hook(self) -> HubSpotHook:
        """The hook for ``hubspot_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.hubspot import HubSpotHook

        return HubSpotHook(hubspot_conn_id=self.hubspot_conn_id)

    def execute(self, context: Context) -> str:
        order = self.hook.update_order(self.order_id, self.properties, self.id_property, clear_nulls=self.clear_nulls)
        self.log.info("HubSpot order %s is updated (%d properties)", order.id, len(self.properties))
        push_record_url(context, self.hook.record_url(id=order.id))
        return order.id
