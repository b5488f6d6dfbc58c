"""Shared fixtures: a throwaway AIRFLOW_HOME on SQLite, the sandbox, and DAG runs in real Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="crm-airflow-home-"))
_DAGS = _HOME / "dags"
_DAGS.mkdir()
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)

from airflow_provider_crm.sandbox import Sandbox  # noqa: E402

pytest_plugins = ["airflow_provider_crm.sandbox.pytest_plugin"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sandbox(crm_sandbox_session: Sandbox) -> Iterator[Sandbox]:
    """The session's sandbox, reset before each test so tests never see each other's records."""
    crm_sandbox_session.reset()
    yield crm_sandbox_session
    crm_sandbox_session.reset()


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, connection: dict[str, object]) -> str:
    """Make ``conn_id`` resolve to ``connection`` through an ``AIRFLOW_CONN_*`` env var."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


def _sandbox_conn(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, vendor: str) -> str:
    conn = sandbox.airflow_connection(vendor) | {"extra": {"read_timeout": 10}}
    return use_connection(monkeypatch, f"{vendor}_default", conn)


def _vendor_conn_fixture(vendor: str) -> Any:
    def fixture(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
        return _sandbox_conn(sandbox, monkeypatch, vendor)

    fixture.__doc__ = f"``{vendor}_default`` pointing at the sandbox (read timeout 10 s: a hang fails soon)."
    return pytest.fixture(fixture, name=f"{vendor}_conn")


kustomer_conn = _vendor_conn_fixture("kustomer")
kaiten_conn = _vendor_conn_fixture("kaiten")
microbase_conn = _vendor_conn_fixture("microbase")
hubspot_conn = _vendor_conn_fixture("hubspot")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for the session (about 3 s)."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return _HOME


@pytest.fixture
def run_dag(airflow_db: Path) -> Iterator[Callable[..., object]]:
    """Write DAG source into the DAGs folder, load it with DagBag and run it with ``dag.test()``."""
    written: list[Path] = []

    def run(source: str, dag_id: str | None = None) -> object:
        try:
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow 3.0/3.1
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

        dag_id = dag_id or f"t_{uuid.uuid4().hex[:12]}"
        path = _DAGS / f"{dag_id}.py"
        path.write_text(textwrap.dedent(source).replace("__DAG_ID__", dag_id))
        written.append(path)
        bag = DagBag(dag_folder=str(path))
        assert bag.import_errors == {}, bag.import_errors
        return bag.get_dag(dag_id).test()

    yield run
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limiters() -> Iterator[None]:
    """Rate limiters are shared per connection in a process; tests must not inherit each other's."""
    from airflow_provider_crm.transport import limiter

    limiter._SHARED.clear()
    yield
    limiter._SHARED.clear()


def _hypothesis_profile() -> None:
    """Fixed seed and bounded examples, so CI runs are repeatable and quick."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.load_profile("ci")


_hypothesis_profile()
