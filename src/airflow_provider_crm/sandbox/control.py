"""HTTP control endpoints under ``/_sandbox`` for driving a sandbox from another process.

They need no token (the server binds to loopback by default) and are not journaled. The API
drives any :class:`SandboxParts` (the engine, in practice) and knows nothing else about it; the
server decides which requests it answers (:func:`is_control_path`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from airflow_provider_crm.sandbox.chaos import chaos_from_dict
from airflow_provider_crm.sandbox.chaos_board import ChaosBoard
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import FaultQueue, fault_from_dict
from airflow_provider_crm.sandbox.journal import Journal
from airflow_provider_crm.sandbox.messages import (
    InvalidJson,
    SandboxRequest,
    SandboxResponse,
    decode_segments,
    json_response,
    loads_strict,
    parse_query,
)
from airflow_provider_crm.sandbox.routing import Router, route

CONTROL_PREFIX = "/_sandbox"

_TRUE = {"1", "true", "yes"}

_Parsed = TypeVar("_Parsed")


class SandboxParts(Protocol):
    """What the control API reads and changes: the apps, journal, fault queue and chaos board."""

    @property
    def apps(self) -> Mapping[str, VendorApp]: ...

    @property
    def journal(self) -> Journal: ...

    @property
    def faults(self) -> FaultQueue: ...

    @property
    def chaos(self) -> ChaosBoard: ...

    def reset(self, vendor: str | None = None) -> None:
        """Clear state, journal, faults and chaos (of one vendor, or of all)."""


def is_control_path(raw_path: str) -> bool:
    """Whether a request path belongs to the control API (``/_sandbox`` or below)."""
    return raw_path == CONTROL_PREFIX or raw_path.startswith(CONTROL_PREFIX + "/")


def _error(status: int, message: str) -> SandboxResponse:
    return json_response(status, {"error": message})


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlApi:
    """Routes: ``GET health``, ``GET journal``, ``GET state/{vendor}``, ``POST reset``,
    ``GET|DELETE faults``, ``POST faults/{vendor}``, ``GET|POST config/{vendor}``,
    ``GET|POST|DELETE chaos/{vendor}``."""

    def __init__(self, sandbox: SandboxParts) -> None:
        self._sandbox = sandbox
        self._router = Router.serving(self)

    def handle(self, method: str, path: str, query: str, body: bytes) -> SandboxResponse:
        """Answer a control request; ``path`` is relative to :data:`CONTROL_PREFIX`."""
        request = SandboxRequest(
            method=method,
            target=path,
            path=path,
            segments=decode_segments(path),
            query=parse_query(query),
            headers={},
            body=body,
            request_id="",
        )
        found = self._router.match(method, request.segments)
        if found is None:
            return _error(404, f"no control endpoint {method} {CONTROL_PREFIX}{path}")
        route, params = found
        try:
            return route.handler(request, params)
        except _ControlError as exc:
            return _error(exc.status, str(exc))

    def _app(self, vendor: str) -> VendorApp:
        app = self._sandbox.apps.get(vendor)
        if app is None:
            raise _ControlError(404, f"unknown vendor {vendor!r}")
        return app

    def _vendor_filter(self, request: SandboxRequest) -> str | None:
        vendor = request.query_value("vendor")
        if vendor is not None:
            self._app(vendor)
        return vendor

    @staticmethod
    def _json_object(request: SandboxRequest) -> dict[str, Any]:
        try:
            body = loads_strict(request.body) if request.body else {}
        except InvalidJson as exc:
            raise _ControlError(400, f"invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _ControlError(400, "body must be a JSON object")
        return body

    def _parsed(self, request: SandboxRequest, parse: Callable[[Mapping[str, Any]], _Parsed]) -> _Parsed:
        """The body read by ``parse`` (``fault_from_dict``, ``chaos_from_dict``); 400 when it refuses it."""
        try:
            return parse(self._json_object(request))
        except ValueError as exc:
            raise _ControlError(400, str(exc)) from exc

    @route("GET", "/health")
    def _health(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendors = {name: {"path": f"/{name}"} for name in self._sandbox.apps}
        return json_response(200, {"status": "ok", "vendors": vendors})

    @route("GET", "/journal")
    def _journal(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendor = self._vendor_filter(request)
        writes_only = (request.query_value("writes") or "").lower() in _TRUE
        entries = self._sandbox.journal.entries(vendor, writes_only=writes_only)
        return json_response(200, {"entries": [entry.to_dict() for entry in entries]})

    @route("GET", "/state/{vendor}")
    def _state(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        app = self._app(params["vendor"])
        with app.lock:
            return json_response(200, app.snapshot())

    @route("POST", "/reset")
    def _reset(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendor = self._vendor_filter(request)
        self._sandbox.reset(vendor)
        return json_response(200, {"reset": vendor or "all"})

    @route("GET", "/faults")
    def _list_faults(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        pending = self._sandbox.faults.pending(self._vendor_filter(request))
        return json_response(200, {"faults": [{"vendor": vendor, **fault.to_dict()} for vendor, fault in pending]})

    @route("DELETE", "/faults")
    def _clear_faults(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        self._sandbox.faults.clear(self._vendor_filter(request))
        return json_response(200, {"faults": []})

    @route("POST", "/faults/{vendor}")
    def _add_fault(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendor = params["vendor"]
        self._app(vendor)
        fault = self._parsed(request, fault_from_dict)
        self._sandbox.faults.add(vendor, fault)
        return json_response(201, {"vendor": vendor, **fault.to_dict()})

    @route("GET", "/config/{vendor}")
    def _config(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return json_response(200, self._app(params["vendor"]).config())

    @route("POST", "/config/{vendor}")
    def _configure(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        app = self._app(params["vendor"])
        return json_response(200, self._parsed(request, app.configure))

    def _chaos_report(self, vendor: str, status: int = 200) -> SandboxResponse:
        board = self._sandbox.chaos
        chaos = board.get(vendor)
        return json_response(
            status,
            {
                "vendor": vendor,
                "enabled": chaos is not None,
                "chaos": chaos.to_dict() if chaos is not None else None,
                "requests": board.requests(vendor),
                "stats": board.stats(vendor),
            },
        )

    @route("GET", "/chaos/{vendor}")
    def _chaos(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendor = params["vendor"]
        self._app(vendor)
        return self._chaos_report(vendor)

    @route("POST", "/chaos/{vendor}")
    def _start_chaos(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendor = params["vendor"]
        self._app(vendor)
        self._sandbox.chaos.set(vendor, self._parsed(request, chaos_from_dict))
        return self._chaos_report(vendor, 201)

    @route("DELETE", "/chaos/{vendor}")
    def _stop_chaos(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        vendor = params["vendor"]
        self._app(vendor)
        self._sandbox.chaos.set(vendor, None)
        return self._chaos_report(vendor)
