"""Pytest fixtures that run the sandbox on loopback.

Enable with ``pytest_plugins = ["airflow_provider_crm.sandbox.pytest_plugin"]`` in a top-level
``conftest.py``. Importing this module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_crm.sandbox.server import Sandbox


@pytest.fixture
def crm_sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox for one test."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def crm_sandbox_session() -> Iterator[Sandbox]:
    """One sandbox for the whole session; call ``reset()`` where tests must not see each other."""
    with Sandbox() as sandbox:
        yield sandbox
