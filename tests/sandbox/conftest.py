"""Fixtures for the sandbox tests: a small Kustomer client (the sandbox fixtures come from the plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_crm.sandbox import Sandbox

TIMEOUT = 5


class KustomerClient:
    """Thin authenticated client for the Kustomer emulator (one keep-alive session)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.base_url = sandbox.base_url("kustomer")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.token('kustomer')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def kustomer(crm_sandbox: Sandbox) -> Iterator[KustomerClient]:
    client = KustomerClient(crm_sandbox)
    yield client
    client.session.close()
