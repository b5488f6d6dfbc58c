"""Every example DAG in docs/ imports cleanly in Airflow, uses the operator its page documents, and runs.

Example DAGs are the ```python blocks whose first line is ``# example-dag``; ``# example-script``
blocks are standalone programs. Both are checked as written, so the docs can't drift from the code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.example_data import seed_example

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
DAG_MARKER = "# example-dag"
SCRIPT_MARKER = "# example-script"
DOCS_OUTPUT = "/tmp/crm-bulk"  # where the bulk examples write their ledgers, as the docs show it
BULK_OUTPUT = Path(tempfile.mkdtemp(prefix="crm-bulk-"))
"""Where they write here: one directory per test process, so suites run side by side never share it."""

_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_DAG_ID = re.compile(r"""dag_id\s*=\s*["']([^"']+)["']""")

BULK_OPERATORS = {
    "KustomerBulkCreateKObjectsOperator",
    "KustomerBulkUpdateKObjectsOperator",
    "KaitenBulkUpdateCustomersOperator",
    "MicroBaseBulkUpdateCustomersOperator",
    "HubSpotBulkUpdateOrdersOperator",
    "HubSpotBulkUpsertOrdersOperator",
}

# Which operator(s) each page's examples must use: each example uses at least one of them, and
# together the page's examples use all of them.
EXPECTED_OPERATORS = {
    "operators/kustomer-create-kobject.md": {"KustomerCreateKObjectOperator"},
    "operators/kustomer-update-kobject.md": {"KustomerUpdateKObjectOperator"},
    "operators/kustomer-upsert-kobject.md": {"KustomerUpsertKObjectOperator", "KustomerBulkUpsertKObjectsOperator"},
    "operators/kaiten-update-customer.md": {"KaitenUpdateCustomerOperator"},
    "operators/microbase-update-customer.md": {"MicroBaseUpdateCustomerOperator"},
    "operators/hubspot-update-order.md": {"HubSpotUpdateOrderOperator"},
    "operators/bulk.md": BULK_OPERATORS,
    "errors-and-retries.md": {"HubSpotUpdateOrderOperator"},
}


@dataclass(frozen=True)
class Example:
    page: str
    number: int
    source: str

    @property
    def id(self) -> str:
        return f"{self.page}#{self.number}"

    @property
    def dag_id(self) -> str:
        found = _DAG_ID.findall(self.source)
        assert len(found) == 1, f"{self.id}: expected exactly one dag_id=..., found {found}"
        return found[0]


def _examples(marker: str) -> list[Example]:
    found = []
    for path in sorted(DOCS.rglob("*.md")):
        page = path.relative_to(DOCS).as_posix()
        blocks = [block for block in _BLOCK.findall(path.read_text()) if block.lstrip().startswith(marker)]
        found += [Example(page, number, block) for number, block in enumerate(blocks, start=1)]
    return found


DAG_EXAMPLES = _examples(DAG_MARKER)
SCRIPT_EXAMPLES = _examples(SCRIPT_MARKER)


def _dagbag(folder: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0/3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=str(folder))


def test_every_operator_page_has_an_example_dag() -> None:
    pages = {path.relative_to(DOCS).as_posix() for path in (DOCS / "operators").glob("*.md")}
    with_examples = {example.page for example in DAG_EXAMPLES}
    assert pages, "docs/operators/ has no pages"
    assert pages <= with_examples, f"operator pages without a '{DAG_MARKER}' block: {sorted(pages - with_examples)}"
    unlisted = sorted(with_examples - EXPECTED_OPERATORS.keys())
    assert not unlisted, f"pages with example DAGs but no entry in EXPECTED_OPERATORS: {unlisted}"


def test_example_dag_ids_are_unique() -> None:
    dag_ids = [example.dag_id for example in DAG_EXAMPLES]
    assert len(dag_ids) == len(set(dag_ids)), dag_ids


@pytest.mark.parametrize("example", DAG_EXAMPLES, ids=lambda example: example.id)
def test_example_dag_imports_and_uses_the_documented_operator(example: Example, tmp_path: Path) -> None:
    (tmp_path / f"{example.dag_id}.py").write_text(example.source)
    bag = _dagbag(tmp_path)
    assert bag.import_errors == {}, bag.import_errors
    assert list(bag.dag_ids) == [example.dag_id]
    operators = {type(task).__name__ for task in bag.dags[example.dag_id].tasks}
    expected = EXPECTED_OPERATORS[example.page]
    assert operators & expected, f"{example.id} uses {sorted(operators)}, none of {sorted(expected)}"


@pytest.mark.parametrize("page", sorted({e.page for e in DAG_EXAMPLES}))
def test_each_page_shows_all_its_operators(page: str, tmp_path: Path) -> None:
    for example in DAG_EXAMPLES:
        if example.page == page:
            (tmp_path / f"{example.dag_id}.py").write_text(example.source)
    bag = _dagbag(tmp_path)
    assert bag.import_errors == {}, bag.import_errors
    used = {type(task).__name__ for dag in bag.dags.values() for task in dag.tasks}
    missing = EXPECTED_OPERATORS[page] - used
    assert not missing, f"{page}: no example uses {sorted(missing)}"


@pytest.fixture
def seeded_sandbox(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Every vendor's default connection pointing at the sandbox, with the records the examples use."""
    seed_example(sandbox)
    for vendor in sandbox.vendors:
        # The default read timeout (30 s): a loaded 2-core machine can hold an answer past a short
        # one, and a record refused for a reason that can pass fails its task by design.
        connection = sandbox.airflow_connection(vendor)
        monkeypatch.setenv(f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT", json.dumps(connection))
    return sandbox


@pytest.mark.parametrize("example", DAG_EXAMPLES, ids=lambda example: example.id)
def test_example_dag_runs_against_the_sandbox(
    example: Example, run_dag: Callable[..., Any], seeded_sandbox: Sandbox
) -> None:
    output = BULK_OUTPUT / example.dag_id
    try:
        run = run_dag(example.source.replace(DOCS_OUTPUT, str(BULK_OUTPUT)), dag_id=example.dag_id)
        instances = run.get_task_instances()
        states = {ti.task_id: str(ti.state) for ti in instances}
        results = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in instances}
    finally:
        shutil.rmtree(output, ignore_errors=True)
    assert states and set(states.values()) == {"success"}, states
    rejected = {task: value for task, value in results.items() if isinstance(value, dict) and value.get("rejected")}
    assert not rejected, f"bulk tasks rejected records: {rejected}"
    assert any(entry.is_write and entry.status and entry.status < 300 for entry in seeded_sandbox.journal()), (
        f"{example.id} wrote nothing"
    )


@pytest.mark.parametrize("example", SCRIPT_EXAMPLES, ids=lambda example: example.id)
def test_example_script_runs(example: Example, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
