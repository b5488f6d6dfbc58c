"""Response bodies are capped: a huge or endless body raises instead of filling memory."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_crm.errors import CrmApiError
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.transport import HttpTransport, RetrySettings, Timeouts, VendorRules


def raw_server(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A loopback server that hands each connection, after reading the request, to ``answer``."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                answer(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    listener.close()


@pytest.fixture
def stalled_server() -> Iterator[str]:
    """A loopback server that declares a 1 GB body, sends 100 bytes of it and then goes silent.

    Only the declared length can refuse this body in time: the bytes that arrive stay under any
    reasonable limit, and reading on waits for the read timeout.
    """

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        conn.sendall(head + b" " * 100)
        stop.wait()

    yield from raw_server(answer)


def test_declared_oversized_body_is_refused(stalled_server: str) -> None:
    transport = HttpTransport(
        base_url=stalled_server,
        rules=VendorRules(),
        max_response_bytes=500,
        timeouts=Timeouts(connect=5, read=20),
        retry=RetrySettings(max_attempts=1),
    )
    started = time.monotonic()
    with pytest.raises(CrmApiError, match="exceeds the 500 byte limit"):
        transport.request("GET", "/anything")
    elapsed = time.monotonic() - started
    # Reading the body would wait for the 20 s read timeout (the server sends 100 of the bytes it declares).
    assert elapsed < 10, f"took {elapsed:.1f}s: the body was read instead of refused by its declared length"


def test_body_over_the_limit_is_refused_and_under_it_read(kustomer_conn: str, sandbox: Sandbox) -> None:
    kobject = sandbox.kustomer.seed("orders", {"title": "t", "custom": {"noteTxt": "x" * 1000}})
    hook = KustomerHook()
    hook.transport.max_response_bytes = 500
    with pytest.raises(CrmApiError, match="exceeds the 500 byte limit"):
        hook.get_kobject("orders", kobject["id"])
    hook.transport.max_response_bytes = 1_000_000
    assert hook.get_kobject("orders", kobject["id"]).custom["noteTxt"] == "x" * 1000


@pytest.fixture
def endless_server() -> Iterator[str]:
    """A loopback server answering 200 with a chunked body that never ends."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            while not stop.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass

    yield from raw_server(answer)


def test_endless_body_is_cut_off(endless_server: str) -> None:
    transport = HttpTransport(base_url=endless_server, rules=VendorRules(), max_response_bytes=2 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(CrmApiError, match="exceeds the 2097152 byte limit"):
        transport.request("GET", "/anything")
    assert time.monotonic() - started < 10
