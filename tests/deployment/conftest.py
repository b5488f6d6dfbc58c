"""A failed deployment test's report carries the tail of every Airflow component's log and task log."""

from __future__ import annotations

from collections.abc import Generator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deployment: runs Airflow's components against PostgreSQL (about a minute; scripts/start_postgres.sh)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The processes' logs are gone once the module's fixtures are torn down: attach them while they exist."""
    report = yield
    deployment = getattr(item, "funcargs", {}).get("deployment")
    already_there = "--- scheduler log (" in str(report.longrepr)  # a failed wait carries them in its message
    if report.failed and report.when == "call" and deployment is not None and not already_there:
        report.sections.append(("Airflow logs (tails)", deployment.diagnostics()))
    return report
