"""The request pipeline behind the HTTP server: faults, chaos, auth, dispatch, journal.

Kept free of socket code so the order of events is easy to read: a request is journaled with
what it carried and how it ended, including requests whose connection is dropped. An injected
fault takes precedence over chaos: a request that consumes an outcome fault draws no chaos.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from airflow_provider_crm.sandbox.chaos_board import ChaosBoard
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import (
    DropAfterStore,
    DropBeforeStore,
    Fault,
    FaultQueue,
    GatewayPage,
    MangledJson,
    RateLimit,
    ServerError,
)
from airflow_provider_crm.sandbox.journal import (
    DEFAULT_JOURNAL_SIZE,
    Journal,
    JournalEntry,
    redact_body,
    redact_headers,
)
from airflow_provider_crm.sandbox.mangle import mangle
from airflow_provider_crm.sandbox.messages import (
    JSON_CONTENT_TYPE,
    SandboxRequest,
    SandboxResponse,
    body_for_journal,
    decode_segments,
    json_response,
    parse_query,
    split_target,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


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


def _mangled(response: SandboxResponse, fault: MangledJson) -> SandboxResponse:
    """A 200 carrying broken JSON in place of the real answer (headers and ``stored`` kept)."""
    return SandboxResponse(
        200,
        mangle(response.encode(), fault.style),
        headers=dict(response.headers),
        stored=response.stored,
        content_type=JSON_CONTENT_TYPE,
    )


class Engine:
    """Owns the vendor apps, the fault queue, chaos and the journal; turns requests into responses.

    ``max_body_bytes`` caps request bodies: the server stops reading above it and answers 413 in
    the vendor's shape (see :meth:`too_large`), so a huge upload cannot exhaust memory.
    """

    def __init__(
        self,
        apps: Mapping[str, VendorApp],
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        journal_size: int = DEFAULT_JOURNAL_SIZE,
    ) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 0:
            raise ValueError("max_body_bytes must be a non-negative integer")
        self.apps: dict[str, VendorApp] = dict(apps)
        self.max_body_bytes = max_body_bytes
        self.journal = Journal(journal_size)
        self.faults = FaultQueue()
        self.chaos = ChaosBoard()

    def reset(self, vendor: str | None = None) -> None:
        """Clear state, journal, faults and chaos (of one vendor, or of all)."""
        for name, app in self.apps.items():
            if vendor is None or name == vendor:
                app.reset()
        self.journal.clear(vendor)
        self.faults.clear(vendor)
        self.chaos.clear(vendor)

    def too_large(self, wire: WireRequest) -> SandboxResponse:
        """The 413 for a request whose body (not read, ``wire.body`` empty) exceeds the cap; journaled."""
        generic = json_response(413, {"error": "request body too large"})
        seq, timestamp = self.journal.next_seq(), time.time()
        vendor, app, request = self._request(wire)
        if app is None:
            self._record(seq, timestamp, None, request, wire, False, generic, generic.status, None)
            return generic
        authorized = app.is_authorized(request)
        with app.lock:
            response = app.payload_too_large(request, self.max_body_bytes)
            app.decorate(request, response)
        self._record(seq, timestamp, vendor, request, wire, authorized, response, response.status, None)
        return response

    def _request(self, wire: WireRequest) -> tuple[str, VendorApp | None, SandboxRequest]:
        """The vendor prefix, its app (``None`` if unknown) and the request relative to that prefix."""
        raw_path, raw_query = split_target(wire.target)
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
        return vendor, app, request

    def handle(self, wire: WireRequest) -> SandboxResponse | None:
        """The response to send, or ``None`` to close the connection without answering."""
        seq, timestamp = self.journal.next_seq(), time.time()
        vendor, app, request = self._request(wire)
        if app is None:
            prefix = split_target(wire.target)[0].removeprefix("/").partition("/")[0]
            message = f"No sandbox vendor at /{prefix}; known prefixes: {', '.join(self.apps)}"
            missing = json_response(404, {"errors": [{"code": "not_found", "message": message, "meta": {}}]})
            self._record(seq, timestamp, None, request, wire, False, missing, missing.status, None)
            return missing

        delay, outcome = self.faults.take(vendor, wire.method, request.path)
        labels = [fault.kind for fault in (delay, outcome) if fault is not None]
        chaos_delay = None
        if outcome is None:
            token_endpoint = app.is_token_endpoint(request)
            decision = self.chaos.draw(vendor, wire.method, request.path, token_endpoint=token_endpoint)
            if decision is not None:
                chaos_delay, outcome = decision.as_faults()
                labels.append(decision.label)
        fault_names = ",".join(labels) or None
        for pause in (delay, chaos_delay):
            if pause is not None:
                time.sleep(pause.seconds)
        authorized = app.is_authorized(request)
        response = self._respond(app, request, authorized, outcome)
        if response is None or isinstance(outcome, DropAfterStore):
            self._record(seq, timestamp, vendor, request, wire, authorized, response, None, fault_names)
            return None
        with app.lock:
            app.decorate(request, response)
        if isinstance(outcome, MangledJson):
            response = _mangled(response, outcome)
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
        if isinstance(outcome, GatewayPage):
            return app.gateway_error(request, outcome)
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
