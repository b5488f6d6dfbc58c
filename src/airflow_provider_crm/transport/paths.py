"""Build request paths in which every caller-supplied segment is escaped.

An id such as ``a/b``, ``%2F`` or ``?x`` must never address another resource, so each segment
is percent-encoded whole (``/`` included). Empty segments and the dot segments ``.``/``..`` are
refused: no real record id looks like that, and some servers and proxies resolve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from airflow_provider_crm.errors import CrmValidationError


@dataclass(frozen=True)
class Raw:
    """A path piece that is already safe (a literal such as ``externalId=`` plus escaped text)."""

    text: str


def escape_segment(value: object, *, name: str = "id") -> str:
    """Percent-encode one path segment, refusing values that cannot be a record id."""
    if value is None:
        raise CrmValidationError(f"{name} is required but was None", field=name)
    text = str(value)
    if not text.strip():
        raise CrmValidationError(f"{name} must not be empty", field=name)
    if text in {".", ".."}:
        raise CrmValidationError(f"{name} {text!r} is not a valid id", field=name)
    return quote(text, safe="")


def segment(value: object, name: str) -> str:
    """Check a caller-supplied id (naming it in the error) and return it for :func:`api_path`."""
    escape_segment(value, name=name)
    return str(value)


def api_path(*segments: str | Raw) -> str:
    """Join segments into ``/a/b/c``; literal segments are passed as :class:`Raw`."""
    parts = [seg.text if isinstance(seg, Raw) else escape_segment(seg, name="path segment") for seg in segments]
    return "/" + "/".join(parts)
