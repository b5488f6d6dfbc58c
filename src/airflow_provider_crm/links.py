"""Extra links from a task to the record it wrote, in the vendor's own UI.

The operator computes the URL while it runs (from ids it just got back) and pushes it to XCom;
the link only reads that XCom value, so nothing vendor-specific runs when the UI asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

RECORD_URL_XCOM_KEY = "crm_record_url"


class CrmRecordLink(BaseOperatorLink):
    """ "Open record" button: the URL the operator pushed, or nothing when none could be derived."""

    name = "Open record"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(key=RECORD_URL_XCOM_KEY, ti_key=ti_key)
        return str(value) if value else ""


def push_record_url(context: Any, url: str | None) -> None:
    """Push ``url`` for :class:`CrmRecordLink` (an empty one when none could be derived, so the
    link finds a value instead of logging a missing XCom)."""
    ti = context.get("ti") if context else None
    if ti is not None:
        ti.xcom_push(key=RECORD_URL_XCOM_KEY, value=url or "")
