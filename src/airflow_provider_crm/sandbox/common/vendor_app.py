"""The contract between the sandbox server and one vendor emulator.

A vendor emulator is one package under ``sandbox/vendors`` whose ``app`` module holds one
:class:`VendorApp` subclass: it owns its routes, its token check, its state and its error shapes.
The server owns sockets, faults and the journal, and calls :meth:`VendorApp.dispatch` with the
app's ``lock`` held, so handlers need no locking.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from airflow_provider_crm.sandbox.common.auth import bearer_token
from airflow_provider_crm.sandbox.common.settings import SettingCheck
from airflow_provider_crm.sandbox.faults import GatewayPage, HttpStatus, RateLimit, ServerError
from airflow_provider_crm.sandbox.gateway import nginx_error_page
from airflow_provider_crm.sandbox.messages import SandboxRequest, SandboxResponse


class VendorApp(ABC):
    """Base class of the vendor emulators.

    Subclasses set ``name`` (the URL prefix) and ``default_token``, build their routes and
    state in ``__init__`` and implement the abstract methods. Settings that tests may change at
    run time are declared in ``settings``: attribute name -> check of a new value (see
    :mod:`~airflow_provider_crm.sandbox.common.settings`); :meth:`configure` sets them and
    :meth:`reset` restores them.
    """

    name: str = ""
    default_token: str = ""
    settings: ClassVar[Mapping[str, SettingCheck]] = {}

    def __init__(self, token: str | None = None) -> None:
        self.token = token or self.default_token
        self.lock = threading.RLock()
        self._defaults = {key: getattr(self, key) for key in self.settings}

    @property
    @abstractmethod
    def state(self) -> Any:
        """The vendor's state object, with inspection helpers for tests."""

    @abstractmethod
    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        """Answer an authorized request (called with ``lock`` held)."""

    @abstractmethod
    def unauthorized(self, request: SandboxRequest) -> SandboxResponse:
        """The vendor's answer to a missing or wrong credential."""

    @abstractmethod
    def rate_limited(self, request: SandboxRequest, fault: RateLimit) -> SandboxResponse:
        """The vendor's 429 answer for an injected :class:`RateLimit`."""

    @abstractmethod
    def server_error(self, request: SandboxRequest, fault: ServerError) -> SandboxResponse:
        """The vendor's answer for an injected :class:`ServerError`."""

    def reset_state(self) -> None:
        """Forget all stored data (called with ``lock`` held); apps that count requests extend it."""
        self.state.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready dump of the state, for the control endpoint."""
        snapshot: dict[str, Any] = self.state.snapshot()
        return snapshot

    def is_authorized(self, request: SandboxRequest) -> bool:
        """Default check: ``Authorization: Bearer <token>`` with the exact token."""
        return bearer_token(request) == self.token

    def gateway_error(self, request: SandboxRequest, fault: GatewayPage) -> SandboxResponse:
        """The gateway's HTML page for an injected :class:`GatewayPage`; vendors with their own page override."""
        return self.server_error(request, ServerError(fault.status, body=fault.body or nginx_error_page(fault.status)))

    def payload_too_large(self, request: SandboxRequest, limit: int) -> SandboxResponse:
        """413 for a body above the sandbox's cap of ``limit`` bytes (the body was never read)."""
        return self.server_error(request, HttpStatus(413))

    def is_token_endpoint(self, request: SandboxRequest) -> bool:
        """Whether the request asks for an OAuth token (chaos leaves these alone unless told otherwise)."""
        return False

    def decorate(self, request: SandboxRequest, response: SandboxResponse) -> None:  # noqa: B027
        """Optional hook: add the headers every answer carries (called once per answered request)."""

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        """Answer for a path no route matches."""
        return SandboxResponse(404, {"error": "not_found", "path": request.path})

    def reset(self) -> None:
        """Clear state and restore the default settings."""
        with self.lock:
            for key, value in self._defaults.items():
                setattr(self, key, value)
            self.reset_state()

    def config(self) -> dict[str, Any]:
        """Current values of the run-time settings."""
        with self.lock:
            return {key: getattr(self, key) for key in self.settings}

    def configure(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Change run-time settings by name; unknown names raise ``ValueError``."""
        unknown = sorted(set(options) - set(self.settings))
        if unknown:
            raise ValueError(f"unknown {self.name} setting(s): {', '.join(unknown)}")
        checked = {key: self.check_setting(key, value) for key, value in options.items()}
        with self.lock:
            for key, value in checked.items():
                setattr(self, key, value)
        return self.config()

    def check_setting(self, key: str, value: Any) -> Any:
        """Validate (and possibly convert) a setting value with its declared check; ``ValueError`` if invalid."""
        return self.settings[key](key, value)
