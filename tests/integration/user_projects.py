"""Run a user's own test suite as a user would: a separate project, a fresh pytest, no Airflow settings."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str


def user_environment() -> dict[str, str]:
    """This process's environment without any Airflow or pytest setting, as on a user's machine."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST_", "_AIRFLOW"))}


def run_user_suite(project: Path, env: Mapping[str, str] | None = None) -> dict[str, Outcome]:
    """Run pytest in ``project`` once; each test's outcome (a skip is not a pass) and failure text.

    :param project: The project's folder (its ``conftest.py`` and ``tests/``).
    :param env: Settings the user's deployment adds to the environment, e.g. ``AIRFLOW__OPENLINEAGE__TRANSPORT``.
    """
    report = project / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", "-q"],
        cwd=project,
        env=user_environment() | dict(env or {}),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert report.is_file(), result.stdout[-5000:] + result.stderr[-5000:]
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = [case.find(tag) for tag in ("failure", "error", "skipped")]
        problem = next((p for p in problems if p is not None), None)
        text = "" if problem is None else (problem.text or problem.get("message") or "?")
        found[case.get("name", "")] = Outcome(problem is None, text)
    return found
