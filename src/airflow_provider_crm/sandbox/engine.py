"""The request pipeline behind the HTTP server: faults, auth, dispatch, journal.

Kept free of socket code so the order of events is easy to read: a request is journaled with
what it carried and how it ended, including requests whose connection is dropped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from airflow_provider_crm.sandbox.base import VendorApp
from airflow_provider_crm.sandbox.control import ControlApi
from airflow_provider_crm.sandbox.faults import (
    DropAfterStore,
    DropBeforeStore,
    Fault,
    FaultQueue,
    RateLimit,
    ServerError,
)
from airflow_provider_crm.sandbox.journal import Journal, JournalEntry, redact_body, redact_headers
from airflow_provider_crm.sandbox.messages import (
    SandboxRequest,
    SandboxResponse,
    body_for_journal,
    decode_segments,
    json_response,
    parse_query,
    split_target,
)

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox"


@dataclass(frozen=True)
class WireRequest:
    """A request as read from the socket."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: bytes


def _join_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers:
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def _journal_body(response: SandboxResponse) -> Any:
    if isinstance(response.body, bytes):
        return body_for_journal(response.body)
    return response.body


class Engine:
    """Owns the vendor apps, the fault queue and the journal; turns requests into responses."""

    def __init__(self, apps: Mapping[str, VendorApp]) -> None:
        self.apps: dict[str, VendorApp] = dict(apps)
        self.journal = Journal()
        self.faults = FaultQueue()
        self.control = ControlApi(self)

    def reset(self, vendor: str | None = None) -> None:
        """Clear state, journal and faults (of one vendor, or of all)."""
        for name, app in self.apps.items():
            if vendor is None or name == vendor:
                app.reset()
        self.journal.clear(vendor)
        self.faults.clear(vendor)

    def handle(self, wire: WireRequest) -> SandboxResponse | None:
        """The response to send, or ``None`` to close the connection without answering."""
        raw_path, raw_query = split_target(wire.target)
        if raw_path == CONTROL_PREFIX or raw_path.startswith(CONTROL_PREFIX + "/"):
            return self.control.handle(wire.method, raw_path[len(CONTROL_PREFIX) :], raw_query, wire.body)

        seq, timestamp = self.journal.next_seq(), time.time()
        prefix, separator, rest = raw_path.removeprefix("/").partition("/")
        vendor = unquote(prefix)
        app = self.apps.get(vendor)
        path = ("/" + rest if separator else "") if app is not None else raw_path
        request = SandboxRequest(
            method=wire.method,
            target=wire.target,
            path=path,
            segments=decode_segments(path),
            query=parse_query(raw_query),
            headers=_join_headers(wire.headers),
            body=wire.body,
            request_id=str(uuid.uuid4()),
        )
        if app is None:
            message = f"No sandbox vendor at /{prefix}; known prefixes: {', '.join(self.apps)}"
            missing = json_response(404, {"errors": [{"code": "not_found", "message": message, "meta": {}}]})
            self._record(seq, timestamp, None, request, wire, False, missing, missing.status, None)
            return missing

        delay, outcome = self.faults.take(vendor, wire.method, path)
        fault_names = ",".join(fault.kind for fault in (delay, outcome) if fault is not None) or None
        if delay is not None:
            time.sleep(delay.seconds)
        authorized = app.is_authorized(request)
        response = self._respond(app, request, authorized, outcome)
        if response is None or isinstance(outcome, DropAfterStore):
            self._record(seq, timestamp, vendor, request, wire, authorized, response, None, fault_names)
            return None
        with app.lock:
            app.decorate(request, response)
        status = response.status
        self._record(seq, timestamp, vendor, request, wire, authorized, response, status, fault_names)
        return response

    def _respond(
        self, app: VendorApp, request: SandboxRequest, authorized: bool, outcome: Fault | None
    ) -> SandboxResponse | None:
        if isinstance(outcome, DropBeforeStore):
            return None
        if isinstance(outcome, RateLimit):
            return app.rate_limited(request, outcome)
        if isinstance(outcome, ServerError):
            return app.server_error(request, outcome)
        if not authorized:
            return app.unauthorized(request)
        try:
            with app.lock:
                return app.dispatch(request)
        except Exception:
            logger.exception("sandbox %s emulator failed on %s %s", app.name, request.method, request.path)
            return app.server_error(request, ServerError(500))

    def _record(
        self,
        seq: int,
        timestamp: float,
        vendor: str | None,
        request: SandboxRequest,
        wire: WireRequest,
        authorized: bool,
        response: SandboxResponse | None,
        status: int | None,
        fault: str | None,
    ) -> None:
        self.journal.append(
            JournalEntry(
                seq=seq,
                timestamp=timestamp,
                request_id=request.request_id,
                vendor=vendor,
                method=request.method,
                path=request.path,
                target=request.target,
                segments=request.segments,
                query=request.query,
                headers=redact_headers(wire.headers),
                authorized=authorized,
                body=redact_body(body_for_journal(wire.body)),
                status=status,
                stored=response.stored if response is not None else False,
                fault=fault,
                response_body=redact_body(_journal_body(response)) if response is not None else None,
            )
        )
