"""Request and response values passed between the HTTP server and the vendor emulators.

The server deals with sockets; vendor apps only ever see these plain values, which keeps the
emulators testable without a network and keeps wire details (raw path, headers) in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

QueryDict = dict[str, str | list[str]]


class InvalidJson(ValueError):
    """The request body is not valid JSON (the vendor decides how to answer)."""


def split_target(target: str) -> tuple[str, str]:
    """Split a request target into its raw path and raw query string (fragment dropped)."""
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    return path, query


def decode_segments(raw_path: str) -> tuple[str, ...]:
    """Split a raw path on ``/`` first, then percent-decode each segment on its own.

    Decoding after splitting is what makes ``a%2Fb`` one segment ``a/b`` instead of two. ``.``
    and ``..`` are kept as literal segments: no normalisation happens anywhere in the sandbox.
    """
    parts = raw_path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    return tuple(unquote(part) for part in parts)


def parse_query(query: str) -> QueryDict:
    """Parse a query string; a key given once maps to a string, a repeated key to a list."""
    result: QueryDict = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        existing = result.get(key)
        if existing is None:
            result[key] = value
        elif isinstance(existing, list):
            existing.append(value)
        else:
            result[key] = [existing, value]
    return result


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not valid JSON")


def loads_strict(raw: bytes) -> Any:
    """Parse JSON the way a strict server does: UTF-8 only, no NaN or Infinity."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(str(exc)) from exc


def body_for_journal(raw: bytes) -> Any:
    """Best-effort readable body: parsed JSON, else text, else ``None`` when empty."""
    if not raw:
        return None
    try:
        return loads_strict(raw)
    except InvalidJson:
        return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class SandboxRequest:
    """One request as a vendor app sees it; paths are relative to the vendor prefix."""

    method: str
    target: str
    path: str
    segments: tuple[str, ...]
    query: QueryDict
    headers: Mapping[str, str]
    body: bytes
    request_id: str

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return header_value(self.headers, name)

    def json(self) -> Any:
        """The body parsed as strict JSON; raises :class:`InvalidJson`."""
        return loads_strict(self.body)

    def query_value(self, name: str) -> str | None:
        """The last value given for a query parameter."""
        value = self.query.get(name)
        if isinstance(value, list):
            return value[-1]
        return value


@dataclass
class SandboxResponse:
    """A response to send; ``body`` is JSON-serialised unless it is ``str``/``bytes``.

    ``stored`` tells the journal that the request changed emulator state.
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stored: bool = False
    content_type: str = JSON_CONTENT_TYPE

    def encode(self) -> bytes:
        """The body bytes to put on the wire."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


def format_seconds(value: float) -> str:
    """Header-friendly number: ``1.0`` -> ``"1"``, ``0.25`` -> ``"0.25"``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def json_response(status: int, body: Any, *, stored: bool = False) -> SandboxResponse:
    """Shorthand for a JSON response."""
    return SandboxResponse(status=status, body=body, stored=stored)
