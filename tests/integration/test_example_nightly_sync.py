"""The nightly-sync example DAG and its tests, run as a user runs them.

A project of its own — ``dags/example_nightly_sync.py`` copied unchanged from ``example_dags/``,
``tests/test_nightly_sync.py`` copied from ``user_tests_nightly_sync.py`` next to this file, and a
``conftest.py`` that only enables the plugin — is tested by pytest in a subprocess with no Airflow
settings in its environment, so its tests see nothing but the documented ``crm_airflow`` fixture.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.user_projects import run_user_suite

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_dags"
USER_TESTS = Path(__file__).with_name("user_tests_nightly_sync.py")
USER_TEST_NAMES = (
    "test_the_first_night_writes_typed_kobjects_and_links_them_everywhere",
    "test_a_rerun_with_changed_totals_updates_those_orders_only",
    "test_an_outage_on_try_1_heals_on_try_2_and_writes_each_order_once",
)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Run the user's tests once: each test's failure text, ``None`` when it passed."""
    project = tmp_path_factory.mktemp("nightly-sync-project")
    (project / "dags").mkdir()
    (project / "tests").mkdir()
    shutil.copy(EXAMPLES / "example_nightly_sync.py", project / "dags" / "example_nightly_sync.py")
    shutil.copy(USER_TESTS, project / "tests" / "test_nightly_sync.py")
    (project / "conftest.py").write_text('pytest_plugins = ["airflow_provider_crm.sandbox.pytest_plugin"]\n')
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    return {name: None if outcome.passed else outcome.message for name, outcome in run_user_suite(project).items()}


def test_the_users_suite_is_the_three_scenarios(outcomes: dict[str, str | None]) -> None:
    assert sorted(outcomes) == sorted(USER_TEST_NAMES)


@pytest.mark.parametrize("name", USER_TEST_NAMES)
def test_the_users_test_passes(outcomes: dict[str, str | None], name: str) -> None:
    """500 typed CSV rows; a rerun with changed totals; an outage healed by the task's retry."""
    failure = outcomes.get(name, "not run")
    assert failure is None, f"{name}:\n{(failure or '')[-6000:]}"


def test_every_example_dag_imports() -> None:
    """``scripts/demo.sh`` loads the whole ``example_dags`` folder before it runs one DAG."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0/3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert {"crm_example_chain", "crm_bulk_sync", "crm_nightly_sync"} <= set(bag.dag_ids)
