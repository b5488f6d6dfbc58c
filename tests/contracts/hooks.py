"""What the hook halves of the contract tests share: a connection to the replay server, error checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_crm.errors import CrmApiError
from tests.conftest import use_connection
from tests.contracts.replay import ReplayServer


def replay_connection(monkeypatch: pytest.MonkeyPatch, server: ReplayServer, conn_type: str, token: str) -> str:
    """The id of a ``conn_type`` connection to ``server`` that sends each request once (no retries to count)."""
    conn: dict[str, object] = {
        "conn_type": conn_type,
        "host": server.url,
        "password": token,
        "extra": {"max_attempts": 1},
    }
    return use_connection(monkeypatch, f"{conn_type}_contract", conn)


def check_api_error(error: CrmApiError, vendor: str, expected: dict[str, Any]) -> None:
    """The typed error a sample's ``hook.raises`` block names: class, status, code, ids, wait, wording."""
    assert type(error).__name__ == expected["error"], repr(error)
    assert error.vendor == vendor
    assert (error.status, error.code) == (expected["status"], expected["code"])
    if "request_id" in expected:
        assert error.request_id == expected["request_id"]
    if "retry_after" in expected:
        assert error.retry_after == expected["retry_after"]
    for fragment in expected.get("mentions", []):
        assert fragment in str(error)


def call_as_documented(hook: Any, spec: dict[str, Any], vendor: str, check: Callable[[Any, Any], None]) -> None:
    """Make the call a sample's ``hook`` block names; check the typed error it raises, or what it returns."""
    call = getattr(hook, spec["call"])
    if "raises" in spec:
        with pytest.raises(CrmApiError) as caught:
            call(**spec["args"])
        check_api_error(caught.value, vendor, spec["raises"])
    else:
        check(call(**spec["args"]), spec["returns"])
