"""Fixtures for the sandbox tests: a sandbox of the test's own and a client per vendor.

The shared ``crm_sandbox`` comes from the plugin; the clients are in ``client``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from airflow_provider_crm.sandbox import Sandbox

from .client import HubSpotClient, KaitenClient, KustomerClient, MicroBaseClient, SandboxClient


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox of the test's own, started and stopped around it (after ``monkeypatch``, so the
    test's patches are undone only once the sandbox has stopped)."""
    with Sandbox() as running:
        yield running


def _vendor_client(kind: type[KaitenClient | MicroBaseClient | HubSpotClient]) -> Callable[..., object]:
    """A fixture named after the vendor: a client with the vendor's token, on the test's own sandbox."""

    @pytest.fixture(name=kind.vendor)
    def client(sandbox: Sandbox) -> Iterator[SandboxClient]:
        with kind(sandbox, sandbox.token(kind.vendor)) as opened:
            yield opened

    return client


kaiten_client = _vendor_client(KaitenClient)
microbase_client = _vendor_client(MicroBaseClient)
hubspot_client = _vendor_client(HubSpotClient)


@pytest.fixture
def kustomer(crm_sandbox: Sandbox) -> Iterator[KustomerClient]:
    with KustomerClient(crm_sandbox) as client:
        yield client
