"""Stored orders rendered as the API's ``SimplePublicObject``, with the property selection reads allow."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_crm.sandbox.messages import SandboxRequest
from airflow_provider_crm.sandbox.vendors.hubspot.properties import CREATE_DATE, LAST_MODIFIED, OBJECT_ID

DEFAULT_PROPERTIES = (OBJECT_ID, CREATE_DATE, LAST_MODIFIED)
"""Properties every answer carries, whichever were requested."""


def render_order(
    record: Mapping[str, Any],
    *,
    requested: Sequence[str] | None = None,
    cleared: Iterable[str] = (),
    trace_id: str | None = None,
) -> dict[str, Any]:
    """A stored order as ``SimplePublicObject``.

    ``requested`` limits the properties (plus :data:`DEFAULT_PROPERTIES`; unset ones are
    ``null``, as HubSpot sends them); ``cleared`` names properties a write just emptied, which
    are echoed as ``""``.
    """
    stored: Mapping[str, Any] = record["properties"]
    if requested is not None:
        properties = {name: stored.get(name) for name in (*requested, *DEFAULT_PROPERTIES)}
    else:
        properties = {**stored, **{name: "" for name in cleared if name not in stored}}
    rendered: dict[str, Any] = {
        "id": record["id"],
        "properties": properties,
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "archived": record["archived"],
    }
    if trace_id is not None:
        rendered["objectWriteTraceId"] = trace_id
    return rendered


def requested_properties(request: SandboxRequest) -> list[str] | None:
    """Names from ``?properties=a,b`` (repeatable), or ``None`` when the query has none."""
    value = request.query.get("properties")
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    return [name.strip() for item in values for name in item.split(",") if name.strip()]


def cleared_names(properties: Mapping[str, str]) -> list[str]:
    """The properties a write empties (sent as ``""``)."""
    return [name for name, value in properties.items() if value == ""]
