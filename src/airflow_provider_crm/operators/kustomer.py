"""Operators that create, update and upsert Kustomer KObjects; each returns the KObject id for XCom.

The values of the record are the fields of the request models
(:mod:`airflow_provider_crm.models.kustomer_requests`): each is a templated argument kept on the
operator under its own name, and :meth:`_KustomerOperator.kobject_fields` hands them to the hook,
which validates them before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.sdk import BaseOperator

from airflow_provider_crm.lineage import RecordLineage
from airflow_provider_crm.links import CrmRecordLink, push_record_url
from airflow_provider_crm.models.kustomer_requests import CREATE_FIELDS, UPDATE_FIELDS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_crm.hooks.kustomer import KustomerHook
    from airflow_provider_crm.models.kustomer import KObject

ADDRESS_FIELDS = ("klass_name", "kobject_id")
"""Templated arguments that say where the record goes rather than what it holds."""


class _KustomerOperator(RecordLineage, BaseOperator):
    """What the KObject operators share: the klass, the values every write may carry, the hook."""

    template_fields_renderers: ClassVar[dict[str, str]] = {
        "custom": "json",
        "data": "json",
        "tags": "json",
        "images": "json",
    }
    ui_color = "#e6f0ff"
    operator_extra_links = (CrmRecordLink(),)

    def __init__(
        self,
        *,
        klass_name: str,
        custom: dict[str, Any] | None = None,
        external_id: str | None = None,
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
        super().__init__(**kwargs)
        self.klass_name = klass_name
        self.custom = custom
        self.external_id = external_id
        self.description = description
        self.tags = tags
        self.data = data
        self.icon = icon
        self.images = images
        self.created_at = created_at
        self.imported_at = imported_at
        self.kustomer_conn_id = kustomer_conn_id

    @cached_property
    def hook(self) -> KustomerHook:
        """The hook for ``kustomer_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.kustomer import KustomerHook

        return KustomerHook(kustomer_conn_id=self.kustomer_conn_id)

    def kobject_fields(self) -> dict[str, Any]:
        """The record's values (as rendered), by the keyword the hook takes them under."""
        return {name: getattr(self, name) for name in self.template_fields if name not in ADDRESS_FIELDS}

    def link_record(self, context: Context, kobject: KObject) -> None:
        """Push the *Open record* link to the KObject just written."""
        url = self.hook.record_url(id=kobject.id, klass=self.klass_name, customer_id=kobject.customer_id)
        push_record_url(context, url)


_NEW_RECORD_PARAMS = """
    :param description: Free text, at most 10,240 characters. (templated)
    :param tags: At most 20 distinct tags. (templated)
    :param data: Any JSON object, stored with the KObject. (templated)
    :param icon: The icon shown on the timeline card, at most 64 characters. (templated)
    :param images: At most 20 distinct ``http(s)`` image URLs. (templated)
    :param created_at: When the record was created in your system (aware datetime or ISO 8601). (templated)
    :param imported_at: Marks imported history (aware datetime or ISO 8601). (templated)
    :param kustomer_conn_id: The Airflow connection to use (default ``kustomer_default``).
"""
"""The parameters the create and the upsert document alike (appended to each one's docstring)."""

_OperatorT = TypeVar("_OperatorT", bound=type)


def _documented(params: str) -> Callable[[_OperatorT], _OperatorT]:
    """Append ``:param`` lines that several operators share to an operator's docstring."""

    def document(operator: _OperatorT) -> _OperatorT:
        operator.__doc__ = (operator.__doc__ or "").rstrip() + "\n" + params.strip("\n")
        return operator

    return document


class _KObjectCreatingOperator(_KustomerOperator):
    """The arguments only a new KObject takes: a required title and its links."""

    template_fields: Sequence[str] = ("klass_name", *CREATE_FIELDS)

    def __init__(
        self, *, title: str, customer_id: str | None = None, company_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.customer_id = customer_id
        self.company_id = company_id


@_documented(_NEW_RECORD_PARAMS)
class KustomerCreateKObjectOperator(_KObjectCreatingOperator):
    """Create a KObject of ``klass_name`` and return its id.

    Give ``external_id`` whenever the source has a stable key: it makes the create safe to
    retry (an unknown outcome is resolved by looking the record up, and an id that already
    exists returns the stored record instead of creating a second one). Without it, a create
    whose outcome is unknown fails rather than risk a duplicate. ``customer_id`` and
    ``company_id`` link the object to a customer and a company; ``imported_at`` (datetime or
    ISO 8601 with offset) marks imported history and lifts Kustomer's per-customer create limit.

    :param klass_name: The klass (custom object type) name, e.g. ``"ecomm-order"``. (templated)
    :param title: The object's title, 1 to 256 characters. (templated)
    :param custom: Custom attributes, typed by the suffix of their name (``totalNum``). (templated)
    :param external_id: Your stable key for the record, unique per klass. (templated)
    :param customer_id: The customer to link the object to (sent in the path). (templated)
    :param company_id: The company to link the object to (sent as ``company``). (templated)
    """

    def execute(self, context: Context) -> str:
        kobject = self.hook.create_kobject(self.klass_name, **self.kobject_fields())
        self.log.info("Kustomer KObject %s is stored in klass %s", kobject.id, self.klass_name)
        self.link_record(context, kobject)
        return kobject.id


class KustomerUpdateKObjectOperator(_KustomerOperator):
    """Update KObject ``kobject_id`` of ``klass_name`` and return its id.

    Only the arguments given are sent; ``None`` means "leave as is". A ``None`` value inside
    ``custom`` is sent as ``null`` and clears that attribute. ``rev`` (the revision last read)
    makes Kustomer refuse the update with 409 when the object changed since; the task then fails
    with :class:`~airflow_provider_crm.errors.CrmConflictError` naming ``rev``.

    :param klass_name: The klass (custom object type) name. (templated)
    :param kobject_id: The id of the KObject to update. (templated)
    :param title: A new title, 1 to 256 characters. (templated)
    :param custom: Custom attributes to set; a ``None`` value clears one. (templated)
    :param external_id: A new external id. (templated)
    :param description: A new description. (templated)
    :param tags: New tags, replacing the old ones. (templated)
    :param data: A new JSON object. (templated)
    :param icon: A new icon. (templated)
    :param images: New image URLs, replacing the old ones. (templated)
    :param created_at: A new creation time (aware datetime or ISO 8601). (templated)
    :param imported_at: A new import time (aware datetime or ISO 8601). (templated)
    :param rev: The revision last read; the update is refused if the object changed since. (templated)
    :param parent: The id of a parent object. (templated)
    :param kustomer_conn_id: The Airflow connection to use (default ``kustomer_default``).
    """

    template_fields: Sequence[str] = ("klass_name", "kobject_id", *UPDATE_FIELDS)

    def __init__(
        self,
        *,
        kobject_id: str,
        title: str | None = None,
        rev: int | None = None,
        parent: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kobject_id = kobject_id
        self.title = title
        self.rev = rev
        self.parent = parent

    def execute(self, context: Context) -> str:
        fields = {**self.kobject_fields(), "rev": _revision(self.rev)}
        kobject = self.hook.update_kobject(self.klass_name, self.kobject_id, **fields)
        self.log.info("Kustomer KObject %s in klass %s is updated", kobject.id, self.klass_name)
        self.link_record(context, kobject)
        return kobject.id


@_documented(_NEW_RECORD_PARAMS)
class KustomerUpsertKObjectOperator(_KObjectCreatingOperator):
    """Create the KObject of ``klass_name`` with ``external_id``, or update the one that has it; return its id.

    Kustomer has no upsert endpoint, so this looks the external id up, then sends a ``PUT`` by id
    or a ``POST`` (nothing when the stored object already holds every value): one or two requests.
    A create that meets the external id, created meanwhile by someone else, becomes an update.
    What happened (``created``, ``updated`` or ``unchanged``) is logged and pushed to XCom under
    the key ``action``. ``customer_id`` and ``company_id`` link a new object only (Kustomer's
    update takes neither).

    :param klass_name: The klass (custom object type) name. (templated)
    :param external_id: The record's key: the KObject is looked up by it. (templated)
    :param title: The object's title, 1 to 256 characters. (templated)
    :param custom: Custom attributes, typed by the suffix of their name; sent whole on update. (templated)
    :param customer_id: The customer a new object is linked to. (templated)
    :param company_id: The company a new object is linked to. (templated)
    """

    def __init__(self, *, external_id: str, **kwargs: Any) -> None:
        super().__init__(external_id=external_id, **kwargs)

    def execute(self, context: Context) -> str:
        kobject, action = self.hook.upsert_kobject(self.klass_name, **self.kobject_fields())
        self.log.info(
            "Kustomer KObject %s (externalId %s) in klass %s: %s", kobject.id, self.external_id, self.klass_name, action
        )
        ti = context.get("ti") if context else None
        if ti is not None:
            ti.xcom_push(key="action", value=action)
        self.link_record(context, kobject)
        return kobject.id


def _revision(rev: Any) -> Any:
    """A templated ``rev`` renders as text (``"3"``); digits are the revision number."""
    if isinstance(rev, str) and rev.strip().isdigit():
        return int(rev.strip())
    return rev
