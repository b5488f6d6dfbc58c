"""The release artifacts: build wheel and sdist, check them, install the wheel into a fresh virtualenv.

Slow (the fresh virtualenv pulls Apache Airflow from the package index, about a minute) and needs
the index. Set ``CRM_SKIP_PACKAGING=1`` to skip it locally.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from airflow_provider_crm import __version__

pytestmark = pytest.mark.skipif(
    os.environ.get("CRM_SKIP_PACKAGING") == "1", reason="CRM_SKIP_PACKAGING=1: packaging tests skipped"
)

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_crm"
DIST_NAME = "airflow-provider-crm"
SOURCE = REPO / "src" / PACKAGE

# Nothing from the working tree that isn't the product may ship.
FORBIDDEN_PARTS = {
    ".venv",
    ".airflow",
    ".git",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "__pycache__",
    "benchmarks",
    "dist",
    "build",
}


def _run(*command: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build``: the sdist, and the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, REPO)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def wheel_files(dist: dict[str, Path]) -> list[str]:
    with zipfile.ZipFile(dist["wheel"]) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def sdist_files(dist: dict[str, Path]) -> list[str]:
    with tarfile.open(dist["sdist"]) as archive:
        names = archive.getnames()
    root = f"{PACKAGE}-{__version__}/"
    assert all(name == root.rstrip("/") or name.startswith(root) for name in names), names[:5]
    return [name[len(root) :] for name in names if name.startswith(root)]


@pytest.fixture(scope="module")
def metadata(dist: dict[str, Path]) -> dict[str, list[str]]:
    with zipfile.ZipFile(dist["wheel"]) as archive:
        text = archive.read(f"{PACKAGE}-{__version__}.dist-info/METADATA").decode()
    message = Parser().parsestr(text)
    return {key: message.get_all(key) or [] for key in set(message.keys())}


def test_artifacts_are_named_for_the_version(dist: dict[str, Path]) -> None:
    assert dist["wheel"].name == f"{PACKAGE}-{__version__}-py3-none-any.whl"
    assert dist["sdist"].name == f"{PACKAGE}-{__version__}.tar.gz"


def test_twine_check_strict_passes(dist: dict[str, Path]) -> None:
    output = _run(sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"])
    assert output.count("PASSED") == 2, output


def test_wheel_ships_the_package_typed_with_its_sandbox_and_nothing_else(wheel_files: list[str]) -> None:
    assert f"{PACKAGE}/py.typed" in wheel_files
    assert f"{PACKAGE}/sandbox/__init__.py" in wheel_files
    assert f"{PACKAGE}/sandbox/pytest_plugin.py" in wheel_files
    modules = {f"{PACKAGE}/{path.relative_to(SOURCE).as_posix()}" for path in SOURCE.rglob("*.py")}
    assert modules - set(wheel_files) == set(), "modules missing from the wheel"
    top_level = {name.split("/", 1)[0] for name in wheel_files}
    assert top_level == {PACKAGE, f"{PACKAGE}-{__version__}.dist-info"}, top_level
    assert not [name for name in wheel_files if name.startswith("tests/") or "/tests/" in name]
    assert not [name for name in wheel_files if name.endswith((".pyc", ".pyo")) or "__pycache__" in name]
    assert f"{PACKAGE}-{__version__}.dist-info/licenses/LICENSE" in wheel_files


def test_wheel_metadata_is_release_grade(metadata: dict[str, list[str]], dist: dict[str, Path]) -> None:
    classifiers = set(metadata["Classifier"])
    assert {
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Typing :: Typed",
        "Programming Language :: Python :: 3.10",
    } <= classifiers
    # PEP 639: the SPDX expression states the licence; License :: classifiers must not repeat it.
    assert metadata["License-Expression"] == ["Apache-2.0"]
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert metadata["Description-Content-Type"] == ["text/markdown"]
    urls = dict(entry.split(", ", 1) for entry in metadata["Project-URL"])
    assert {"Documentation", "Changelog"} <= urls.keys(), urls
    assert all(url.startswith("https://") for url in urls.values()), urls
    assert any(req.startswith("apache-airflow>=3") for req in metadata["Requires-Dist"])
    with zipfile.ZipFile(dist["wheel"]) as archive:
        entry_points = archive.read(f"{PACKAGE}-{__version__}.dist-info/entry_points.txt").decode()
    assert "[apache_airflow_provider]" in entry_points
    assert "airflow-crm-sandbox = airflow_provider_crm.sandbox.cli:main" in entry_points


def test_sdist_has_what_a_build_needs_and_no_local_state(sdist_files: list[str]) -> None:
    for required in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "PKG-INFO", "docs/index.md"):
        assert required in sdist_files, f"{required} missing from the sdist"
    assert f"src/{PACKAGE}/py.typed" in sdist_files
    assert f"src/{PACKAGE}/__init__.py" in sdist_files
    leaked = [
        name
        for name in sdist_files
        if FORBIDDEN_PARTS & set(name.split("/")) or name.startswith(".ci/") or name.endswith((".pyc", ".pyo"))
    ]
    assert not leaked, f"local state in the sdist: {leaked[:20]}"


def test_wheel_installs_into_a_fresh_virtualenv_and_registers_the_provider(
    dist: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "CRM_"))
    }
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", dist["wheel"], env=env)

    # The provider comes from the wheel, not from this checkout.
    location = _run(python, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)", env=env).strip()
    assert Path(location).is_relative_to(venv), location
    assert (Path(location).parent / "py.typed").is_file()

    airflow = venv / "bin" / "airflow"
    providers = json.loads(_json_part(_run(airflow, "providers", "list", "--output", "json", env=env)))
    ours = [p for p in providers if p["package_name"] == DIST_NAME]
    assert ours and ours[0]["version"] == __version__ == "0.1.0", providers

    [info] = json.loads(_json_part(_run(airflow, "providers", "get", DIST_NAME, "--full", "--output", "json", env=env)))
    assert info["documentation-url"] and info["documentation-url"].endswith("/docs"), info.get("documentation-url")
    assert {c["connection-type"] for c in info["connection-types"]} == {"kustomer", "kaiten", "microbase", "hubspot"}

    help_text = _run(venv / "bin" / "airflow-crm-sandbox", "--help", env=env)
    assert "--seed-example" in help_text


def _json_part(output: str) -> str:
    """The JSON document in a CLI's output (Airflow may print log lines before it)."""
    match = re.search(r"^\[.*\]\s*$", output, re.DOTALL | re.MULTILINE)
    assert match, output[-2000:]
    return match.group(0)
