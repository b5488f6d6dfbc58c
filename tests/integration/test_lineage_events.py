"""The OpenLineage events the example DAGs emit, read from the provider's file transport.

Each project copies the example DAGs unchanged and runs them in ``dag.test()`` from
``user_tests_lineage.py``, with ``AIRFLOW__OPENLINEAGE__TRANSPORT`` sending every event to
``events.jsonl``. The listener emits a task's events from the task's own process before the task
ends, and the DAG run's events later, from a process pool; the file is read until every task
expected has ended. A second project makes every OpenLineage import fail, as where the provider is
not installed: the same DAGs run the same way and nothing is emitted.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.user_projects import Outcome, run_user_suite

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
EXAMPLE_DAGS = ("example_crm_chain.py", "example_nightly_sync.py", "example_bulk_sync.py")
BULK_TASKS = ("extract_orders", "push_to_kustomer", "to_hubspot_orders", "upsert_to_hubspot")
EVENTS_DEADLINE_S = 120.0
CHAIN_TASKS = ("create_order", "ship_order", "link_licence_customer", "tag_shop_customer", "patch_crm_order")
NIGHTLY_TASKS = (
    "export_orders",
    "push_kobjects",
    "link_records",
    "upsert_hubspot_orders",
    "link_licence_customer",
    "tag_shop_customer",
)
PLUGIN = 'pytest_plugins = ["airflow_provider_crm.sandbox.pytest_plugin"]\n'
NO_OPENLINEAGE = '''import importlib.abc
import importlib.metadata
import sys


def hidden(name):
    name = (name or "").lower().replace("_", "-")
    return name.startswith("openlineage") or name == "apache-airflow-providers-openlineage"


class NoOpenLineage(importlib.abc.MetaPathFinder):
    """OpenLineage imports fail, as where neither the provider nor its client is installed."""

    def find_spec(self, name, path=None, target=None):
        if hidden(name.split(".")[0]) or name.startswith("airflow.providers.openlineage"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def without_openlineage(distributions):
    """Airflow finds providers and plugins by their packages' entry points: hide those packages too."""
    return lambda **kwargs: [d for d in distributions(**kwargs) if not hidden(d.metadata["Name"])]


sys.meta_path.insert(0, NoOpenLineage())
importlib.metadata.distributions = without_openlineage(importlib.metadata.distributions)
if sys.version_info < (3, 12):  # where Airflow reads package metadata through the backport
    import importlib_metadata

    importlib_metadata.distributions = without_openlineage(importlib_metadata.distributions)
'''

Lineage = dict[str, list[tuple[Any, ...]]]
"""A task's datasets as an event names them: ``inputs`` (namespace, name), ``outputs`` (namespace, name, rowCount)."""


def run_project(root: Path, *, blocked: bool) -> tuple[dict[str, Outcome], Path, Path]:
    """Run the example DAGs' lineage tests in a project of their own; (outcomes, events file, facts folder)."""
    for folder in ("dags", "tests", "facts"):
        (root / folder).mkdir()
    for dag in EXAMPLE_DAGS:
        shutil.copy(REPO / "example_dags" / dag, root / "dags" / dag)
    shutil.copy(HERE / "user_tests_lineage.py", root / "tests" / "test_lineage.py")
    if blocked:
        shutil.copy(HERE / "user_tests_no_openlineage.py", root / "tests" / "test_without_openlineage.py")
    (root / "conftest.py").write_text((NO_OPENLINEAGE if blocked else "") + PLUGIN)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    events = root / "events.jsonl"
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    env = {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport), "CRM_LINEAGE_FACTS": str(root / "facts")}
    return run_user_suite(root, env), events, root / "facts"


def read_events(path: Path, jobs: set[str]) -> list[dict[str, Any]]:
    """The events in the file once each of ``jobs`` (``dag_id.task_id``) has ended, or at the deadline."""
    deadline = time.monotonic() + EVENTS_DEADLINE_S
    while True:
        text = path.read_text() if path.exists() else ""
        events = [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]
        ended = {event["job"]["name"] for event in events if event["eventType"] in ("COMPLETE", "FAIL")}
        if jobs <= ended or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def lineage(event: dict[str, Any]) -> Lineage:
    outputs = [
        (d["namespace"], d["name"], d.get("outputFacets", {}).get("outputStatistics", {}).get("rowCount"))
        for d in event.get("outputs", [])
    ]
    return {"inputs": [(d["namespace"], d["name"]) for d in event.get("inputs", [])], "outputs": outputs}


def ended(events: list[dict[str, Any]], dag_id: str, state: str = "COMPLETE") -> dict[str, list[Lineage]]:
    """Each task of ``dag_id`` that ended in ``state``: the datasets of every such event."""
    found: dict[str, list[Lineage]] = {}
    for event in events:
        dag, _, task = event["job"]["name"].partition(".")
        if dag == dag_id and task and event["eventType"] == state:
            found.setdefault(task, []).append(lineage(event))
    return found


def read_facts(folder: Path, test: str) -> tuple[dict[str, Any], dict[str, str]]:
    """What a project's test recorded, and vendor → the namespace its records must carry
    (``<vendor>://<sandbox host>:<port>``)."""
    facts = json.loads((folder / f"{test}.json").read_text())
    urls = {vendor: urlsplit(url) for vendor, url in facts["sandbox"].items()}
    return facts, {vendor: f"{vendor}://{url.hostname}:{url.port}" for vendor, url in urls.items()}


def failures(outcomes: dict[str, Outcome]) -> dict[str, str]:
    """The failure text of each test of a project that did not pass."""
    return {name: outcome.message[-4000:] for name, outcome in outcomes.items() if not outcome.passed}


def written(namespace: str, name: str, count: int | None) -> Lineage:
    return {"inputs": [], "outputs": [(namespace, name, count)]}


NOTHING: Lineage = {"inputs": [], "outputs": []}


@pytest.fixture(scope="module")
def with_openlineage(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    """The events of the example DAGs' runs, and the facts folder naming what they must carry."""
    if importlib.util.find_spec("airflow.providers.openlineage") is None:
        pytest.skip("apache-airflow-providers-openlineage is not installed (pip install -e '.[test]')")
    outcomes, path, facts = run_project(tmp_path_factory.mktemp("lineage-project"), blocked=False)
    assert len(outcomes) == 4 and not failures(outcomes), failures(outcomes)
    jobs = {
        *(f"crm_bulk_sync.{task}" for task in BULK_TASKS),
        *(f"crm_example_chain.{task}" for task in CHAIN_TASKS),
        *(f"crm_nightly_sync.{task}" for task in NIGHTLY_TASKS),
        "crm_lineage_partial_failure.update_customers",
    }
    return read_events(path, jobs), facts


def test_each_task_of_the_chain_reports_the_record_it_wrote(with_openlineage: tuple[list[Any], Path]) -> None:
    events, facts = with_openlineage
    _, ns = read_facts(facts, "chain")
    assert ended(events, "crm_example_chain") == {
        "create_order": [written(ns["kustomer"], "klasses.ecomm-order", 1)],
        "ship_order": [written(ns["kustomer"], "klasses.ecomm-order", 1)],
        "link_licence_customer": [written(ns["kaiten"], "customers", 1)],
        "tag_shop_customer": [written(ns["microbase"], "customers", 1)],
        "patch_crm_order": [written(ns["hubspot"], "orders", 1)],
    }


def test_the_nightly_sync_reports_its_export_and_the_records_each_bulk_task_wrote(
    with_openlineage: tuple[list[Any], Path],
) -> None:
    events, facts = with_openlineage
    nightly, ns = read_facts(facts, "nightly")
    assert ended(events, "crm_nightly_sync") == {
        "export_orders": [NOTHING],
        "push_kobjects": [
            {"inputs": [("file", nightly["orders_csv"])], "outputs": [(ns["kustomer"], "klasses.ecomm-order", 500)]},
        ],
        "link_records": [NOTHING],
        "upsert_hubspot_orders": [written(ns["hubspot"], "orders", 500)],
        "link_licence_customer": [written(ns["kaiten"], "customers", 1)],
        "tag_shop_customer": [written(ns["microbase"], "customers", 1)],
    }


def test_the_bulk_example_reports_the_records_each_bulk_task_wrote(with_openlineage: tuple[list[Any], Path]) -> None:
    events, facts = with_openlineage
    _, ns = read_facts(facts, "bulk")
    assert ended(events, "crm_bulk_sync") == {
        "extract_orders": [NOTHING],
        "push_to_kustomer": [written(ns["kustomer"], "klasses.ecomm-order", 50)],
        "to_hubspot_orders": [NOTHING],
        "upsert_to_hubspot": [written(ns["hubspot"], "orders", 50)],
    }


def test_a_failed_bulk_run_reports_the_records_it_wrote_before_failing(
    with_openlineage: tuple[list[Any], Path],
) -> None:
    events, facts = with_openlineage
    partial, ns = read_facts(facts, "partial")
    assert ended(events, "crm_lineage_partial_failure") == {}
    assert ended(events, "crm_lineage_partial_failure", "FAIL") == {
        "update_customers": [{"inputs": [("file", partial["source"])], "outputs": [(ns["kaiten"], "customers", 1)]}],
    }


def test_without_openlineage_the_same_runs_pass_and_nothing_is_emitted(tmp_path: Path) -> None:
    outcomes, events, _ = run_project(tmp_path, blocked=True)
    assert len(outcomes) == 6 and not failures(outcomes), failures(outcomes)
    assert not events.exists()
