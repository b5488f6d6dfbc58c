"""The HTTP client the sandbox tests talk to the vendor emulators with."""

from __future__ import annotations

from types import TracebackType
from typing import Any, ClassVar, Self

import requests

from airflow_provider_crm.sandbox import Sandbox

TIMEOUT = 5

MICROBASE_SERVICE = "/services/customer/v1"


class SandboxClient:
    """One keep-alive session to one vendor emulator; paths are relative to its base URL plus ``root``.

    ``token`` is sent as ``Authorization: Bearer <token>``; ``None`` sends no credential.
    """

    def __init__(self, sandbox: Sandbox, vendor: str, token: str | None, *, root: str = "") -> None:
        self.base_url = sandbox.base_url(vendor) + root
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def authorized(sandbox: Sandbox, vendor: str) -> SandboxClient:
    """A client with the vendor's own token, at its base URL."""
    return SandboxClient(sandbox, vendor, sandbox.token(vendor))


class KustomerClient(SandboxClient):
    """The Kustomer emulator, with its token."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox, "kustomer", sandbox.token("kustomer"))


class KaitenClient(SandboxClient):
    """The Kaiten emulator's Core API (``{base_url}/api``)."""

    vendor: ClassVar[str] = "kaiten"

    def __init__(self, sandbox: Sandbox, token: str | None = None) -> None:
        super().__init__(sandbox, self.vendor, token, root="/api")


class MicroBaseClient(SandboxClient):
    """The MicroBase emulator (``{base_url}/services/...``); ``call`` runs a customer-service operation."""

    vendor: ClassVar[str] = "microbase"

    def __init__(self, sandbox: Sandbox, token: str | None = None) -> None:
        super().__init__(sandbox, self.vendor, token)

    def call(self, operation: str, **payload: Any) -> requests.Response:
        return self.post(f"{MICROBASE_SERVICE}/{operation}", json=payload)


class HubSpotClient(SandboxClient):
    """The HubSpot emulator, with ``token`` or else the private-app token."""

    vendor: ClassVar[str] = "hubspot"

    def __init__(self, sandbox: Sandbox, token: str | None = None) -> None:
        super().__init__(sandbox, self.vendor, token or sandbox.token(self.vendor))
