"""Pieces of Kustomer's JSON:API-like resource documents that every resource shares."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def segment(value: str) -> str:
    """``value`` escaped as one URL path segment, for ``links``.

    :param value: an id or name.
    """
    return quote(value, safe="")


def relationship(kind: str, collection: str, object_id: str) -> dict[str, Any]:
    """A ``relationships`` entry, e.g. ``{"links": {"self": "/v1/orgs/<id>"}, "data": {"type": "org", "id": <id>}}``.

    :param kind: the related resource's ``type`` (``org``, ``user``, ``customer``).
    :param collection: its collection in the URL (``orgs``, ``users``, ``customers``).
    :param object_id: its id.
    """
    return {"links": {"self": f"/v1/{collection}/{segment(object_id)}"}, "data": {"type": kind, "id": object_id}}
