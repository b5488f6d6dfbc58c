"""The sandbox HTTP server: one loopback server hosting every vendor emulator.

HTTP/1.1 with keep-alive: bodies are read by ``Content-Length`` (or chunked), every response
carries ``Content-Length``, and connections stay open between requests as real clients expect.
The server puts the pieces together: the control API answers ``/_sandbox/...`` and the engine
(faults, chaos, vendor apps, journal) everything else.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

from airflow_provider_crm.sandbox.chaos import Chaos
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.control import CONTROL_PREFIX, ControlApi, is_control_path
from airflow_provider_crm.sandbox.engine import DEFAULT_MAX_BODY_BYTES, Engine, WireRequest
from airflow_provider_crm.sandbox.faults import Fault
from airflow_provider_crm.sandbox.journal import DEFAULT_JOURNAL_SIZE, JournalEntry
from airflow_provider_crm.sandbox.messages import SandboxResponse, json_response, split_target
from airflow_provider_crm.sandbox.registry import build_apps
from airflow_provider_crm.sandbox.vendors.kustomer.app import KustomerApp

logger = logging.getLogger(__name__)

App = TypeVar("App", bound=VendorApp)

IDLE_TIMEOUT_SECONDS = 60.0
STOP_POLL_SECONDS = 0.02  # how often serve_forever checks for stop(); bounds stop() latency


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    """Reads one request at a time from a connection and hands it to the engine."""

    protocol_version = "HTTP/1.1"
    server_version = "crm-sandbox"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus delayed ACKs
    # add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        """``Server`` header value."""
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BadRequest(400, "invalid chunk size") from exc
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(chunks)
            total += size
            if total > self.server.engine.max_body_bytes:
                raise _BadRequest(413, "request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError as exc:
            raise _BadRequest(400, "invalid Content-Length") from exc
        if length < 0:
            raise _BadRequest(400, "invalid Content-Length")
        if length > self.server.engine.max_body_bytes:
            raise _BadRequest(413, "request body too large")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadRequest(400, "request body shorter than Content-Length")
        return body

    def _send(self, response: SandboxResponse) -> None:
        payload = self.encode_payload(response)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    @staticmethod
    def encode_payload(response: SandboxResponse) -> bytes:
        return b"" if response.status in (204, 304) else response.encode()

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            if exc.status == 413:
                unread = WireRequest(self.command, self.path, list(self.headers.items()), b"")
                self._send(self.server.too_large(unread))
            else:
                self._send(SandboxResponse(exc.status, {"error": str(exc)}))
            return
        wire = WireRequest(self.command, self.path, list(self.headers.items()), body)
        response = self.server.respond(wire)
        if response is None:
            self.close_connection = True
            return
        self._send(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    """Threaded server that can cut its open keep-alive connections on shutdown."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], engine: Engine) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.engine = engine
        self.control = ControlApi(engine)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` does (it can be slow)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def respond(self, wire: WireRequest) -> SandboxResponse | None:
        """The control API's answer or the engine's (``None``: close the connection unanswered)."""
        raw_path, raw_query = split_target(wire.target)
        if is_control_path(raw_path):
            return self.control.handle(wire.method, raw_path[len(CONTROL_PREFIX) :], raw_query, wire.body)
        return self.engine.handle(wire)

    def too_large(self, wire: WireRequest) -> SandboxResponse:
        """The 413 for a body above the cap: generic for the control API, the vendor's otherwise."""
        if is_control_path(split_target(wire.target)[0]):
            return json_response(413, {"error": "request body too large"})
        return self.engine.too_large(wire)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are routine (clients disconnect); keep them out of stderr."""
        logger.debug("sandbox connection error from %s", client_address, exc_info=True)


class Sandbox:
    """A running set of vendor emulators behind one HTTP server.

    ``Sandbox()`` binds ``127.0.0.1`` on a free port. Use it as a context manager, or call
    :meth:`start` and :meth:`stop`. Vendor base URLs are ``{url}/{vendor}``. Request bodies above
    ``max_body_bytes`` are not read and get the vendor's 413. The journal keeps the last
    ``journal_size`` requests (raise it for long runs that inspect every request).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: dict[str, str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        journal_size: int = DEFAULT_JOURNAL_SIZE,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._engine = Engine(build_apps(tokens), max_body_bytes, journal_size)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle.

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("sandbox is already running")
        server = _Server((self.host, self._requested_port), self._engine)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name=f"crm-sandbox-{server.server_port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    # Addresses and credentials.

    @property
    def port(self) -> int:
        """The bound port (the real one when started with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("sandbox is not running; call start() first")
        return self._server.server_port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321``."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def vendors(self) -> tuple[str, ...]:
        """URL prefixes served, one per vendor."""
        return tuple(self._engine.apps)

    def base_url(self, vendor: str) -> str:
        """A vendor's base URL, e.g. ``http://127.0.0.1:54321/kustomer``."""
        self.app(vendor)
        return f"{self.url}/{vendor}"

    def token(self, vendor: str) -> str:
        """The bearer token the vendor accepts."""
        return self.app(vendor).token

    def airflow_connection(self, vendor: str) -> dict[str, str]:
        """An Airflow connection (JSON form) pointing at this vendor's emulator."""
        return {"conn_type": vendor, "host": self.base_url(vendor), "password": self.token(vendor)}

    # Emulators and their state.

    def app(self, vendor: str) -> VendorApp:
        """The emulator serving a vendor prefix."""
        try:
            return self._engine.apps[vendor]
        except KeyError:
            raise KeyError(f"unknown vendor {vendor!r}; expected one of {self.vendors}") from None

    def emulator(self, kind: type[App]) -> App:
        """The emulator of ``kind``'s vendor, typed: ``sandbox.emulator(HubSpotApp).add_property(...)``."""
        app = self.app(kind.name)
        if not isinstance(app, kind):
            raise TypeError(f"the {kind.name!r} emulator is a {type(app).__name__}, not a {kind.__name__}")
        return app

    @property
    def kustomer(self) -> KustomerApp:
        """The Kustomer emulator (shortcut for ``emulator(KustomerApp)``, kept for existing tests)."""
        return self.emulator(KustomerApp)

    def state(self, vendor: str) -> Any:
        """The vendor emulator's state object (e.g. :class:`KustomerState`)."""
        return self.app(vendor).state

    def reset(self, vendor: str | None = None) -> None:
        """Clear state, journal, faults and chaos, and restore default settings (all vendors or one)."""
        if vendor is not None:
            self.app(vendor)
        self._engine.reset(vendor)

    # Journal.

    def journal(self, vendor: str | None = None) -> list[JournalEntry]:
        """Requests received under vendor prefixes, in arrival order."""
        return self._engine.journal.entries(vendor)

    def writes(self, vendor: str | None = None) -> list[JournalEntry]:
        """Journal entries with POST, PUT, PATCH or DELETE."""
        return self._engine.journal.entries(vendor, writes_only=True)

    # Faults.

    def inject(self, vendor: str, fault: Fault) -> None:
        """Arm a fault for the vendor's next matching request(s)."""
        self.app(vendor)
        self._engine.faults.add(vendor, fault)

    def pending_faults(self, vendor: str | None = None) -> list[Fault]:
        """Faults not yet consumed, with ``count`` = remaining firings."""
        return [fault for _, fault in self._engine.faults.pending(vendor)]

    def clear_faults(self, vendor: str | None = None) -> None:
        """Disarm faults."""
        self._engine.faults.clear(vendor)

    # Chaos.

    def chaos(self, vendor: str, chaos: Chaos | None) -> None:
        """Run the vendor in chaos mode (counters start at zero), or turn it off with ``None``."""
        self.app(vendor)
        self._engine.chaos.set(vendor, chaos)

    def chaos_settings(self, vendor: str) -> Chaos | None:
        """The vendor's active chaos settings, ``None`` when off."""
        self.app(vendor)
        return self._engine.chaos.get(vendor)

    def chaos_stats(self, vendor: str) -> dict[str, int]:
        """Chaos faults fired per kind since chaos was last enabled (still readable after turning it off)."""
        self.app(vendor)
        return self._engine.chaos.stats(vendor)

    def chaos_requests(self, vendor: str) -> int:
        """Requests chaos has drawn a decision for since it was last enabled (faulted or not)."""
        self.app(vendor)
        return self._engine.chaos.requests(vendor)
