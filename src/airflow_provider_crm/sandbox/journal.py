"""The request journal: what actually arrived on the wire and what the sandbox answered.

Tests assert on these entries instead of on mocks. Secrets never enter the journal: credential
headers and OAuth body fields (client secrets, refresh and access tokens) are replaced by
``"<redacted>"``, and only an ``authorized`` flag is kept.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from airflow_provider_crm.sandbox.messages import QueryDict, header_value

REDACTED = "<redacted>"
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_JOURNAL_SIZE = 10_000


SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "access_token", "id_token", "password", "code"})


def redact_body(body: Any) -> Any:
    """A body with credential fields (OAuth secrets, issued tokens) replaced, JSON or form-encoded."""
    if isinstance(body, dict):
        return {key: REDACTED if key in SECRET_FIELDS else redact_body(value) for key, value in body.items()}
    if isinstance(body, list):
        return [redact_body(item) for item in body]
    if isinstance(body, str) and "=" in body and not body.lstrip().startswith(("<", "{", "[")):
        pairs = parse_qsl(body, keep_blank_values=True)
        if pairs and any(key in SECRET_FIELDS for key, _ in pairs):
            return urlencode([(key, REDACTED if key in SECRET_FIELDS else value) for key, value in pairs])
    return body


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict (repeated names joined by ``, ``) with credentials redacted."""
    result: dict[str, str] = {}
    for name, value in headers:
        shown = REDACTED if name.lower() in REDACTED_HEADERS else value
        result[name] = f"{result[name]}, {shown}" if name in result else shown
    return result


@dataclass(frozen=True)
class JournalEntry:
    """One request handled by a vendor prefix (control endpoints are not journaled).

    ``path`` is the vendor-relative path exactly as received (still percent-encoded, no query);
    ``target`` is the full request target; ``segments`` are the decoded path segments.
    ``status`` is ``None`` when the connection was dropped; ``fault`` names the fault(s) that
    fired; ``stored`` says whether emulator state changed.
    """

    seq: int
    timestamp: float
    request_id: str
    vendor: str | None
    method: str
    path: str
    target: str
    segments: tuple[str, ...]
    query: QueryDict
    headers: dict[str, str]
    authorized: bool
    body: Any
    status: int | None
    stored: bool
    fault: str | None
    response_body: Any

    @property
    def is_write(self) -> bool:
        """Whether the method is one that can change state."""
        return self.method in WRITE_METHODS

    def header(self, name: str) -> str | None:
        """Case-insensitive lookup in the (redacted) request headers."""
        return header_value(self.headers, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used by the control endpoint."""
        return {
            "seq": self.seq,
            "timestamp": self.timestamp,
            "request_id": self.request_id,
            "vendor": self.vendor,
            "method": self.method,
            "path": self.path,
            "target": self.target,
            "segments": list(self.segments),
            "query": self.query,
            "headers": self.headers,
            "authorized": self.authorized,
            "body": self.body,
            "status": self.status,
            "stored": self.stored,
            "fault": self.fault,
            "response_body": self.response_body,
        }


class Journal:
    """Thread-safe, bounded, append-only list of entries."""

    def __init__(self, max_entries: int = DEFAULT_JOURNAL_SIZE) -> None:
        self._lock = threading.Lock()
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._seq = 0

    def next_seq(self) -> int:
        """Reserve a sequence number (so entries are ordered by arrival, not completion)."""
        with self._lock:
            self._seq += 1
            return self._seq

    def append(self, entry: JournalEntry) -> None:
        """Record an entry."""
        with self._lock:
            self._entries.append(entry)

    def entries(self, vendor: str | None = None, *, writes_only: bool = False) -> list[JournalEntry]:
        """Entries ordered by arrival, optionally for one vendor and/or only writes."""
        with self._lock:
            selected = [
                entry
                for entry in self._entries
                if (vendor is None or entry.vendor == vendor) and (not writes_only or entry.is_write)
            ]
        return sorted(selected, key=lambda entry: entry.seq)

    def clear(self, vendor: str | None = None) -> None:
        """Forget all entries, or one vendor's (sequence numbers keep increasing)."""
        with self._lock:
            if vendor is None:
                self._entries.clear()
            else:
                kept = [entry for entry in self._entries if entry.vendor != vendor]
                self._entries.clear()
                self._entries.extend(kept)
