"""The documented ``crm_airflow`` fixture, used as a user would: a project of its own (the files of
docs/sandbox.md's "Testing your DAGs", as written, plus a few more tests) run by pytest in a
subprocess with no Airflow settings in its environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from airflow_provider_crm.sandbox import pytest_plugin
from airflow_provider_crm.sandbox.pytest_plugin import prepare_airflow_home
from tests.integration.user_projects import Outcome, run_user_suite, user_environment

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "sandbox.md"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_FILE_COMMENT = re.compile(r"# ([\w./-]+\.py)\n")

EXTRA_FILES = {
    # A DAG importing a module that sits next to it, as DAG folders often do.
    "dags/order_helpers.py": """
        def make_orders(count):
            return [{"external_id": f"h-{n}", "title": f"Helper order {n}"} for n in range(count)]
    """,
    "dags/with_helper.py": """
        import pendulum
        from airflow.sdk import DAG, task
        from order_helpers import make_orders

        from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator

        with DAG(dag_id="with_helper", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
            KustomerBulkCreateKObjectsOperator(
                task_id="push", klass_name="helper-order", records=make_orders(2)
            )
    """,
    # A task that fails on every try, saying which try it is.
    "dags/flaky.py": """
        import datetime

        import pendulum
        from airflow.sdk import DAG, task

        with DAG(
            dag_id="flaky",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            default_args={"retries": 1, "retry_delay": datetime.timedelta(seconds=0)},
        ):

            @task
            def boom(ti=None):
                print(f"working on try {ti.try_number}")
                raise ValueError(f"boom on try {ti.try_number}")

            boom()
    """,
    "tests/test_checks.py": """
        import os
        from pathlib import Path

        DAGS = Path(__file__).parents[1] / "dags"


        def test_a_naive_test_of_a_failing_run_fails(crm_airflow):
            crm_airflow.connect("kustomer_default", "kustomer", password="not-the-sandbox-token")
            crm_airflow.sandbox.app("kaiten").seed("acme-corp", "Acme Corp")
            crm_airflow.run(DAGS / "nightly_orders.py")


        def test_each_try_is_reported(crm_airflow):
            crm_airflow.run("dags/flaky.py")  # relative to the rootdir


        def test_sibling_modules_import(crm_airflow):
            run = crm_airflow.run(DAGS / "with_helper.py")
            assert crm_airflow.xcom(run, "push")["created"] == 2
            assert crm_airflow.sandbox.state("kustomer").count("helper-order") == 2


        def test_the_home_is_a_throwaway_one(crm_airflow):
            assert crm_airflow.home.name.startswith("crm-airflow-home-")
            assert os.environ["AIRFLOW_HOME"] == str(crm_airflow.home)
            assert (crm_airflow.home / "airflow.db").is_file()
            (Path(__file__).parents[1] / "home.txt").write_text(str(crm_airflow.home))
    """,
}


def guide_files() -> dict[str, str]:
    """The guide's files: each ``python`` block whose first line is ``# <path>.py``."""
    files = {}
    for block in _BLOCK.findall(GUIDE.read_text()):
        named = _FILE_COMMENT.match(block)
        if named:
            files[named.group(1)] = block
    return files


@pytest.fixture(scope="module")
def user_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("user-project")
    files = guide_files() | {path: textwrap.dedent(text).lstrip() for path, text in EXTRA_FILES.items()}
    for path, text in files.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    return project


@pytest.fixture(scope="module")
def outcomes(user_project: Path) -> dict[str, Outcome]:
    """Run the user's test suite once; each test's outcome and failure message."""
    return run_user_suite(user_project)


def test_the_guide_has_a_complete_project() -> None:
    assert set(guide_files()) >= {
        "conftest.py",
        "dags/nightly_orders.py",
        "tests/test_nightly_orders.py",
        "tests/test_my_hook_code.py",
    }


def test_the_guides_tests_pass_as_written(outcomes: dict[str, Outcome]) -> None:
    """The passing run asserts the sandbox holds the records; the outage test expects a failed task."""
    for name in (
        "test_orders_reach_kustomer_and_the_customer_is_linked",
        "test_an_outage_fails_the_push_and_writes_nothing",
        "test_my_hook_code",
    ):
        assert outcomes[name].passed, f"{name}:\n{outcomes[name].message[-4000:]}"


def test_a_failed_task_fails_the_test_naming_it(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["test_a_naive_test_of_a_failing_run_fails"]
    assert not outcome.passed
    report = outcome.message
    assert "DAG 'nightly_orders' run " in report and "2 of 3 task instance(s) did not succeed" in report
    assert "- push_orders: failed after 1 try" in report
    assert "- link_customer: upstream_failed" in report
    assert "- extract_orders" not in report, "a task that succeeded is not listed"
    [error] = [line for line in report.splitlines() if "error (try 1):" in line]
    assert "CrmAuthenticationError" in error and "HTTP 401" in error
    assert "Airflow connection 'kustomer_default'" in error, "the 401 names the connection to fix"
    assert "not-the-sandbox-token" not in report


def test_every_try_of_a_task_is_reported(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["test_each_try_is_reported"]
    assert not outcome.passed
    assert "- boom: failed after 2 tries" in outcome.message
    assert "error (try 1): ValueError: boom on try 1" in outcome.message
    assert "error (try 2): ValueError: boom on try 2" in outcome.message
    tail = outcome.message.split("log tail:", 1)[1]
    assert "working on try 2" in tail and "working on try 1" not in tail, "the tail is the last try's"


def test_dag_files_import_their_sibling_modules(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["test_sibling_modules_import"]
    assert outcome.passed, outcome.message[-4000:]


def test_the_throwaway_home_is_removed_afterwards(outcomes: dict[str, Outcome], user_project: Path) -> None:
    assert outcomes["test_the_home_is_a_throwaway_one"].passed, outcomes["test_the_home_is_a_throwaway_one"].message
    home = Path((user_project / "home.txt").read_text())
    assert not home.exists()


# -- the plugin's set-up, in this process ------------------------------------------------------


def test_importing_the_plugin_does_not_import_airflow() -> None:
    code = "import sys, airflow_provider_crm.sandbox.pytest_plugin; sys.exit('airflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=user_environment(), check=False).returncode == 0


def test_a_users_own_airflow_home_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "my-dags"))
    before = dict(os.environ)
    home = prepare_airflow_home("auto")
    assert (home.path, home.isolated, home.problem) == (tmp_path, False, None)
    assert dict(os.environ) == before
    home.restore()
    assert tmp_path.is_dir()


def test_isolated_mode_sets_up_and_removes_a_throwaway_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://prod-db/airflow")
    monkeypatch.delitem(sys.modules, "airflow", raising=False)  # as before Airflow's first import
    home = prepare_airflow_home("isolated")
    try:
        assert home.isolated and home.path is not None and home.path != tmp_path
        assert os.environ["AIRFLOW_HOME"] == str(home.path)
        assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home.path / 'airflow.db'}"
        assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(home.path / "dags")
        assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    finally:
        home.restore()
    assert not home.path.exists()
    assert os.environ["AIRFLOW_HOME"] == str(tmp_path)
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql://prod-db/airflow"


def test_too_late_to_isolate_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.setitem(sys.modules, "airflow", sys.modules.get("airflow") or types.ModuleType("airflow"))
    home = prepare_airflow_home("auto")
    assert home.path is None and "AIRFLOW_HOME" not in os.environ
    assert home.problem is not None and "-p airflow_provider_crm.sandbox.pytest_plugin" in home.problem


def test_an_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(pytest.UsageError, match=f"{pytest_plugin.HOME_OPTION} = 'shared'"):
        prepare_airflow_home("shared")
