"""Operators that create, update and upsert Kustomer KObjects; each returns the KObject id for XCom."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_crm.links import CrmRecordLink, push_record_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_crm.hooks.kustomer import KustomerHook

_PAYLOAD_RENDERERS = {"custom": "json", "data": "json", "tags": "json", "images": "json"}


class _KustomerOperator(BaseOperator):
    ui_color = "#e6f0ff"
    operator_extra_links = (CrmRecordLink(),)

    def __init__(self, *, kustomer_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kustomer_conn_id = kustomer_conn_id

    def hook(self) -> KustomerHook:
        from airflow_provider_crm.hooks.kustomer import KustomerHook

        return KustomerHook(kustomer_conn_id=self.kustomer_conn_id)


class KustomerCreateKObjectOperator(_KustomerOperator):
    """Create a KObject of ``klass_name`` and return its id.

    Give ``external_id`` whenever the source has a stable key: it makes the create safe to
    retry (an unknown outcome is resolved by looking the record up, and an id that already
    exists returns the stored record instead of creating a second one). Without it, a create
    whose outcome is unknown fails rather than risk a duplicate. ``customer_id`` and
    ``company_id`` link the object to a customer and a company; ``imported_at`` (datetime or
    ISO 8601 with offset) marks imported history and lifts Kustomer's per-customer create limit.
    """

    template_fields: Sequence[str] = (
        "klass_name",
        "title",
        "custom",
        "external_id",
        "customer_id",
        "company_id",
        "description",
        "tags",
        "data",
        "icon",
        "images",
        "created_at",
        "imported_at",
    )
    template_fields_renderers = _PAYLOAD_RENDERERS

    def __init__(
        self,
        *,
        klass_name: str,
        title: str,
        custom: dict[str, Any] | None = None,
        external_id: str | None = None,
        customer_id: str | None = None,
        company_id: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        data: dict[str, Any] | None = None,
        icon: str | None = None,
        images: list[str] | None = None,
        created_at: Any = None,
        imported_at: Any = None,
        kustomer_conn_id: str = "kustomer_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(kustomer_conn_id=kustomer_conn_id, **kwargs)
        self.klass_name = klass_name
        self.title = title
        self.custom = custom
        self.external_id = external_id
        self.customer_id = customer_id
        self.company_id = company_id
        self.description = description
        self.tags = tags
        self.data = data
        self.icon = icon
        self.images = images
        self.created_at = created_at
        self.imported_at = imported_at

    def execute(self, context: Context) -> str:
        hook = self.hook()
        kobject = hook.create_kobject(
            self.klass_name,
            title=self.title,
            custom=self.custom,
            external_id=self.external_id,
            customer_id=self.customer_id,
            company_id=self.company_id,
            description=self.description,
            tags=self.tags,
            data=self.data,
            icon=self.icon,
            images=self.images,
            created_at=self.created_at,
            imported_at=self.imported_at,
        )
        self.log.info("Kustomer KObject %s is stored in klass %s", kobject.id, self.klass_name)
        push_record_url(context, hook.record_url(id=kobject.id, klass=self.klass_name, customer_id=kobject.customer_id))
        return kobject.id


class KustomerUpdateKObjectOperator(_KustomerOperator):
    """Update KObject ``kobject_id`` of ``klass_name`` and return its id.

    Only the arguments given are sent; ``None`` means "leave as is". A ``None`` value inside
    ``custom`` is sent as ``null`` and clears that attribute. ``rev`` (the revision last read)
    makes Kustomer refuse the update with 409 when the object changed since; the task then fails
    with :class:`~airflow_provider_crm.errors.CrmConflictError` naming ``rev``.
    """

    template_fields: Sequence[str] = (
        "klass_name",
        "kobject_id",
        "title",
        "custom",
        "external_id",
        "description",
        "tags",
        "data",
        "icon",
        "images",
        "created_at",
        "imported_at",
        "rev",
        "parent",
    )
    template_fields_renderers = _PAYLOAD_RENDERERS

    def __init__(
        self,
        *,
        klass_name: str,
        kobject_id: str,
        title: str | None = None,
        custom: dict[str, Any] | None = None,
        external_id: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        data: dict[str, Any] | None = None,
        icon: str | None = None,
        images: list[str] | None = None,
        created_at: Any = None,
        imported_at: Any = None,
        rev: int | None = None,
        parent: str | None = None,
        kustomer_conn_id: str = "kustomer_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(kustomer_conn_id=kustomer_conn_id, **kwargs)
        self.klass_name = klass_name
        self.kobject_id = kobject_id
        self.title = title
        self.custom = custom
        self.external_id = external_id
        self.description = description
        self.tags = tags
        self.data = data
        self.icon = icon
        self.images = images
        self.created_at = created_at
        self.imported_at = imported_at
        self.rev = rev
        self.parent = parent

    def execute(self, context: Context) -> str:
        hook = self.hook()
        kobject = hook.update_kobject(
            self.klass_name,
            self.kobject_id,
            title=self.title,
            custom=self.custom,
            external_id=self.external_id,
            description=self.description,
            tags=self.tags,
            data=self.data,
            icon=self.icon,
            images=self.images,
            created_at=self.created_at,
            imported_at=self.imported_at,
            rev=_revision(self.rev),
            parent=self.parent,
        )
        self.log.info("Kustomer KObject %s in klass %s is updated", kobject.id, self.klass_name)
        push_record_url(context, hook.record_url(id=kobject.id, klass=self.klass_name, customer_id=kobject.customer_id))
        return kobject.id


class KustomerUpsertKObjectOperator(_KustomerOperator):
    """Create the KObject of ``klass_name`` with ``external_id``, or update the one that has it; return its id.

    Kustomer has no upsert endpoint, so this looks the external id up, then sends a ``PUT`` by id
    or a ``POST`` (nothing when the stored object already holds every value): one or two requests.
    A create that meets the external id, created meanwhile by someone else, becomes an update.
    What happened (``created``, ``updated`` or ``unchanged``) is logged and pushed to XCom under
    the key ``action``. Parameters as :class:`KustomerCreateKObjectOperator`, with ``external_id``
    required; ``customer_id`` and ``company_id`` link a new object only (Kustomer's update takes
    neither).
    """

    template_fields: Sequence[str] = KustomerCreateKObjectOperator.template_fields
    template_fields_renderers = _PAYLOAD_RENDERERS

    def __init__(
        self,
        *,
        klass_name: str,
        external_id: str,
        title: str,
        custom: dict[str, Any] | None = None,
        customer_id: str | None = None,
        company_id: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        data: dict[str, Any] | None = None,
        icon: str | None = None,
        images: list[str] | None = None,
        created_at: Any = None,
        imported_at: Any = None,
        kustomer_conn_id: str = "kustomer_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(kustomer_conn_id=kustomer_conn_id, **kwargs)
        self.klass_name = klass_name
        self.external_id = external_id
        self.title = title
        self.custom = custom
        self.customer_id = customer_id
        self.company_id = company_id
        self.description = description
        self.tags = tags
        self.data = data
        self.icon = icon
        self.images = images
        self.created_at = created_at
        self.imported_at = imported_at

    def execute(self, context: Context) -> str:
        hook = self.hook()
        kobject, action = hook.upsert_kobject(
            self.klass_name,
            self.external_id,
            title=self.title,
            custom=self.custom,
            customer_id=self.customer_id,
            company_id=self.company_id,
            description=self.description,
            tags=self.tags,
            data=self.data,
            icon=self.icon,
            images=self.images,
            created_at=self.created_at,
            imported_at=self.imported_at,
        )
        self.log.info(
            "Kustomer KObject %s (externalId %s) in klass %s: %s", kobject.id, self.external_id, self.klass_name, action
        )
        ti = context.get("ti") if context else None
        if ti is not None:
            ti.xcom_push(key="action", value=action)
        push_record_url(context, hook.record_url(id=kobject.id, klass=self.klass_name, customer_id=kobject.customer_id))
        return kobject.id


def _revision(rev: Any) -> Any:
    """A templated ``rev`` renders as text (``"3"``); digits are the revision number."""
    if isinstance(rev, str) and rev.strip().isdigit():
        return int(rev.strip())
    return rev
