"""Fault switches: queued misbehaviour that matching requests consume.

A fault is armed for one vendor and fires for the next ``count`` requests whose method and
vendor-relative raw path (no query string) match its optional filters. Each request consumes at
most one :class:`Latency` (a delay, after which it is handled normally) and at most one outcome
fault (everything else), oldest first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar


@dataclass(kw_only=True)
class Fault:
    """Base of all faults: how often it fires and which requests it applies to.

    ``path_pattern`` is a regular expression searched (``re.search``) in the vendor-relative
    raw path, e.g. ``/v1/klasses/orders`` for ``POST /kustomer/v1/klasses/orders``.
    """

    kind: ClassVar[str] = "fault"

    count: int = 1
    method: str | None = None
    path_pattern: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.method is not None:
            self.method = self.method.upper()
        if self.path_pattern is not None:
            try:
                re.compile(self.path_pattern)
            except re.error as exc:
                raise ValueError(f"invalid path_pattern: {exc}") from exc

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.method is not None and self.method != method.upper():
            return False
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, the inverse of :func:`fault_from_dict`."""
        return {"kind": self.kind, **asdict(self)}


@dataclass
class RateLimit(Fault):
    """Answer 429 without processing the request.

    ``retry_after`` is the wait in seconds; it goes into ``x-ratelimit-reset`` (unless
    ``reset_header`` overrides that value, e.g. with an epoch timestamp) and, when
    ``send_retry_after_header`` is set, into ``Retry-After``. Fractions are sent as-is
    (``0.2``) so tests stay fast, even though HTTP only defines whole seconds.

    Vendors that name the exhausted limit read ``policy`` (``None`` = the vendor's usual one;
    HubSpot: ``"TEN_SECONDLY_ROLLING"`` or ``"DAILY"``) and report ``interval_ms`` as the window
    length (``None`` = ``retry_after`` in milliseconds). Vendors that never send ``Retry-After``
    on a 429 (HubSpot) send it only when ``force_retry_after_header`` is set.
    """

    kind: ClassVar[str] = "rate_limit"

    retry_after: float = 1.0
    send_retry_after_header: bool = True
    reset_header: float | None = None
    policy: str | None = None
    interval_ms: int | None = None
    force_retry_after_header: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.policy is not None and (not isinstance(self.policy, str) or not self.policy.strip()):
            raise ValueError("policy must be a non-empty string")
        if self.interval_ms is not None and (
            isinstance(self.interval_ms, bool) or not isinstance(self.interval_ms, int) or self.interval_ms < 1
        ):
            raise ValueError("interval_ms must be a positive integer")


@dataclass
class ServerError(Fault):
    """Answer a 5xx without processing the request.

    ``body`` replaces the vendor's JSON error body with raw text (e.g. a gateway's HTML page).
    """

    kind: ClassVar[str] = "server_error"

    status: int = 500
    body: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 500 <= self.status <= 599:
            raise ValueError("status must be a 5xx code")


@dataclass
class HttpStatus(ServerError):
    """Answer any 4xx or 5xx without processing the request, e.g. HubSpot's 423 Locked or 524.

    ``body`` is sent as-is (``None`` = the vendor's usual error body for that status) and
    ``headers`` are added to the answer. Being a :class:`ServerError`, it is answered through the
    vendor's ``server_error`` hook, so it needs no special case in the server.
    """

    kind: ClassVar[str] = "http_status"

    status: int = field()  # required: without field() the parent's default would be inherited
    body: str | None = None
    headers: dict[str, str] | None = None

    def __post_init__(self) -> None:
        Fault.__post_init__(self)
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 400 <= self.status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        if self.headers is not None:
            if not isinstance(self.headers, dict) or not all(
                isinstance(name, str) and isinstance(value, str) for name, value in self.headers.items()
            ):
                raise ValueError("headers must map strings to strings")
            self.headers = dict(self.headers)


@dataclass
class OperationFailure(ServerError):
    """The operation fails on an error that carries no code (e.g. its database times out); nothing is stored.

    Vendors whose framework answers such errors from inside the operation render ``message``
    their way: MicroBase answers HTTP 200 ``{"ok": false, "data": message}`` with no ``error``
    code. The others answer it as a :class:`ServerError` with ``status``: being one, it goes through
    the vendor's ``server_error`` hook and needs no special case in the server. Like every outcome
    fault it fires before the token check. ``body`` is not accepted: the vendor shapes the answer.
    """

    kind: ClassVar[str] = "operation_failure"

    message: str = "internal error"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.message, str) or not self.message.strip():
            raise ValueError("message must be a non-empty string")
        if self.body is not None:
            raise ValueError("body is not accepted: the vendor shapes the answer from message")


@dataclass
class Latency(Fault):
    """Sleep before handling the request, then handle it normally."""

    kind: ClassVar[str] = "latency"

    seconds: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")


@dataclass
class DropAfterStore(Fault):
    """Process the request fully, then close the connection without sending a response.

    The client sees a connection error although the write happened: the "unknown outcome" case.
    """

    kind: ClassVar[str] = "drop_after_store"


@dataclass
class DropBeforeStore(Fault):
    """Close the connection without processing the request or sending a response."""

    kind: ClassVar[str] = "drop_before_store"


@dataclass
class GatewayPage(ServerError):
    """Answer the HTML error page of the gateway in front of the vendor, without processing the request.

    Clients that parse every error body as JSON trip over this; ``body`` overrides the page.
    """

    kind: ClassVar[str] = "gateway_page"

    status: int = 502


MANGLE_STYLES = ("malformed", "truncated")


@dataclass
class MangledJson(Fault):
    """Process the request, then answer 200 with a broken JSON body, as a mangling proxy would.

    ``style`` ``"truncated"`` cuts the real body short (``{"data": {"id": "abc"``); ``"malformed"``
    makes it invalid (a trailing comma). The write is applied, but the client cannot read its outcome.
    """

    kind: ClassVar[str] = "mangled_json"

    style: str = "truncated"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.style not in MANGLE_STYLES:
            raise ValueError(f"style must be one of {MANGLE_STYLES}")


FAULT_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls
    for cls in (
        RateLimit,
        ServerError,
        HttpStatus,
        OperationFailure,
        GatewayPage,
        Latency,
        DropAfterStore,
        DropBeforeStore,
        MangledJson,
    )
}


def fault_from_dict(data: Mapping[str, Any]) -> Fault:
    """Build a fault from ``{"kind": "rate_limit", "count": 2, ...}``; raises ``ValueError``."""
    options = dict(data)
    kind = options.pop("kind", None)
    cls = FAULT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) for {kind}: {', '.join(unknown)}")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


@dataclass
class _Armed:
    vendor: str
    fault: Fault
    remaining: int


class FaultQueue:
    """Thread-safe per-vendor queue of armed faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def add(self, vendor: str, fault: Fault) -> None:
        """Arm a fault; the caller's object is copied, so it can be reused."""
        with self._lock:
            self._armed.append(_Armed(vendor, replace(fault), fault.count))

    def take(self, vendor: str, method: str, path: str) -> tuple[Latency | None, Fault | None]:
        """Consume the faults that fire for one request: (delay, outcome)."""
        delay: Latency | None = None
        outcome: Fault | None = None
        with self._lock:
            for armed in self._armed:
                if armed.vendor != vendor or not armed.fault.matches(method, path):
                    continue
                if isinstance(armed.fault, Latency):
                    if delay is not None:
                        continue
                    delay = armed.fault
                elif outcome is None:
                    outcome = armed.fault
                else:
                    continue
                armed.remaining -= 1
            self._armed = [armed for armed in self._armed if armed.remaining > 0]
        return delay, outcome

    def pending(self, vendor: str | None = None) -> list[tuple[str, Fault]]:
        """Still-armed faults as (vendor, fault) with ``count`` set to the remaining count."""
        with self._lock:
            return [
                (armed.vendor, replace(armed.fault, count=armed.remaining))
                for armed in self._armed
                if vendor is None or armed.vendor == vendor
            ]

    def clear(self, vendor: str | None = None) -> None:
        """Disarm all faults, or those of one vendor."""
        with self._lock:
            self._armed = [armed for armed in self._armed if vendor is not None and armed.vendor != vendor]
