"""Pytest fixtures that run the sandbox on loopback, and DAGs in Airflow against it.

Enable with ``pytest_plugins = ["airflow_provider_crm.sandbox.pytest_plugin"]`` in the top-level
``conftest.py`` (or ``-p airflow_provider_crm.sandbox.pytest_plugin``). Importing this module does
not import Airflow.

Fixtures:

* ``crm_sandbox`` — a fresh sandbox for one test; ``crm_sandbox_session`` — one for the session.
* ``crm_airflow`` — a :class:`~airflow_provider_crm.sandbox.dag_runner.CrmAirflow`: a migrated
  Airflow metadata database, the session's sandbox (reset for the test), the connections of
  ``crm_connections`` pointing at it, and ``run(dag_file)`` that runs the DAG with ``dag.test()``
  and fails the test when a task did not succeed.
* ``crm_connections`` — connection id → vendor; override it in ``conftest.py`` to choose ids.
* ``crm_airflow_db`` — the migrated Airflow home (session), used by ``crm_airflow``.

Airflow home: Airflow reads ``AIRFLOW_HOME`` on its first import, so the plugin decides before
any test module is collected (``pytest_configure``). With the ini option ``crm_airflow_home =
auto`` (the default), a throwaway home with a SQLite database and an empty DAGs folder is created,
unless ``AIRFLOW_HOME`` is already set: then that home, its configuration and its database are
used as they are (and migrated). ``crm_airflow_home = isolated`` always uses a throwaway home.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from airflow_provider_crm.sandbox.dag_runner import DEFAULT_CONNECTIONS, CrmAirflow
from airflow_provider_crm.sandbox.server import Sandbox

HOME_OPTION = "crm_airflow_home"
MODES = ("auto", "isolated")
MIGRATE_TIMEOUT = 600


@dataclass
class AirflowHome:
    """The Airflow home the session's DAG runs use, and how the plugin changed the environment."""

    path: Path | None
    isolated: bool
    problem: str | None = None
    saved_env: dict[str, str | None] = field(default_factory=dict)

    def restore(self) -> None:
        """Undo the environment changes and remove a throwaway home."""
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self.isolated and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


_HOME = pytest.StashKey[AirflowHome]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        HOME_OPTION,
        "Airflow home for crm_airflow: 'auto' (a throwaway one unless AIRFLOW_HOME is set) or 'isolated' (always)",
        default="auto",
    )


def prepare_airflow_home(mode: str) -> AirflowHome:
    """Choose the session's Airflow home and, for a throwaway one, point Airflow's settings at it."""
    if mode not in MODES:
        raise pytest.UsageError(f"{HOME_OPTION} = {mode!r}: use one of {', '.join(MODES)}")
    current = os.environ.get("AIRFLOW_HOME")
    if mode == "auto" and current:
        return AirflowHome(Path(current), isolated=False)
    if "airflow" in sys.modules:
        return AirflowHome(
            None,
            isolated=False,
            problem=(
                "Airflow was imported before airflow_provider_crm.sandbox.pytest_plugin could set up a "
                "throwaway AIRFLOW_HOME (Airflow reads it once, on import). Don't import Airflow at the top "
                "of conftest.py, load the plugin earlier with `-p airflow_provider_crm.sandbox.pytest_plugin`, "
                f"or set AIRFLOW_HOME yourself (and leave {HOME_OPTION} at 'auto')."
            ),
        )
    home = Path(tempfile.mkdtemp(prefix="crm-airflow-home-"))
    (home / "dags").mkdir()
    values = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    return AirflowHome(home, isolated=True, saved_env=saved)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_HOME] = prepare_airflow_home(str(config.getini(HOME_OPTION)).strip() or "auto")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME, None)
    if home is not None:
        home.restore()


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


@pytest.fixture(scope="session")
def crm_airflow_db(pytestconfig: pytest.Config) -> Path:
    """The session's Airflow home, its metadata database migrated once (``airflow db migrate``)."""
    home = pytestconfig.stash[_HOME]
    if home.problem is not None or home.path is None:
        pytest.fail(home.problem or "no Airflow home", pytrace=False)
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
        check=False,
    )
    if migrate.returncode != 0:
        output = (migrate.stdout + migrate.stderr)[-3000:]
        pytest.fail(f"`airflow db migrate` failed ({migrate.returncode}):\n{output}", pytrace=False)
    return home.path


@pytest.fixture
def crm_connections() -> dict[str, str]:
    """Connection id → sandbox vendor for ``crm_airflow``: the four ``<vendor>_default`` ids.

    Override it in ``conftest.py`` to use your DAGs' own connection ids.
    """
    return dict(DEFAULT_CONNECTIONS)


@pytest.fixture
def crm_airflow(
    crm_airflow_db: Path,
    crm_sandbox_session: Sandbox,
    crm_connections: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    pytestconfig: pytest.Config,
) -> Iterator[CrmAirflow]:
    """Airflow and the sandbox, ready for ``crm_airflow.run("dags/my_dag.py")``.

    The sandbox is reset before and after the test; each connection of ``crm_connections`` points
    at it through an ``AIRFLOW_CONN_<ID>`` variable that is removed after the test.
    """
    from airflow_provider_crm.transport import limiter

    crm_sandbox_session.reset()
    limiter._SHARED.clear()  # a throttled limiter of an earlier test must not slow this one
    runner = CrmAirflow(crm_sandbox_session, crm_airflow_db, pytestconfig.rootpath, monkeypatch)
    for conn_id, vendor in crm_connections.items():
        runner.connect(conn_id, vendor)
    yield runner
    crm_sandbox_session.reset()
    limiter._SHARED.clear()
