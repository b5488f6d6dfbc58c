"""Browser tests of the provider in Airflow's own UI (headless Chromium driven by Playwright).

Select them with ``pytest -m ui``; ``scripts/install_browser.sh`` installs what they need.
Screenshots go to ``tests/ui/artifacts/`` (git-ignored), or under ``$CRM_UI_ARTIFACTS``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Where the UI tests of this session put their screenshots; printed at the end of the session.
_ARTIFACT_DIRS: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ui: drives Airflow's web UI in headless Chromium (needs chromium and playwright: scripts/install_browser.sh)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item, so fixtures can save a screenshot when a test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _ARTIFACT_DIRS:
        terminalreporter.write_line(f"UI test screenshots and logs: {path}")


@pytest.fixture(scope="module")
def ui_artifacts(request: pytest.FixtureRequest) -> Path:
    """An emptied directory for one test module's screenshots: ``$CRM_UI_ARTIFACTS/<module>``."""
    root = Path(os.environ.get("CRM_UI_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path = (root / request.module.__name__.rsplit(".", 1)[-1]).resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    _ARTIFACT_DIRS.append(path)
    return path
