"""Run a DAG file in real Airflow against the sandbox and fail the test when a task did not succeed.

This is the engine of the ``crm_airflow`` pytest fixture (see :mod:`.pytest_plugin`). Airflow is
imported only when a DAG is run, never when this module is imported: Airflow reads
``AIRFLOW_HOME`` once, on its first import, so the plugin must be able to set it first.

Why each step exists:

* ``dag.test()`` needs a migrated metadata database (``no such table: task_instance`` otherwise).
* On Airflow 3.3, ``dag.test()`` serializes the DAG by parsing the DAG bundles Airflow is
  configured with; a file outside every bundle fails with "the dag is not serialized". The runner
  therefore adds the DAG's folder as a local bundle (``[dag_processor] dag_bundle_config_list``)
  for the duration of the run, unless a configured local bundle already holds it. Earlier 3.x
  releases serialize the DAG object directly and ignore the extra bundle.
* ``dag.test()`` returns a failed run instead of raising, so a naive test passes; the runner
  checks every task instance and fails the test naming each task that did not succeed, with its
  error and the last lines it logged.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

from airflow_provider_crm.sandbox.server import Sandbox

DEFAULT_CONNECTIONS: dict[str, str] = {
    "kustomer_default": "kustomer",
    "kaiten_default": "kaiten",
    "microbase_default": "microbase",
    "hubspot_default": "hubspot",
}
"""Connection id → sandbox vendor, as the operators and hooks default to them."""

BUNDLE_NAME = "crm-test-dags"
"""The bundle the runner adds for a DAG folder that no configured bundle holds."""
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
BUNDLE_ENV = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
SUCCEEDED = frozenset({"success", "skipped"})
LOG_TAIL_LINES = 12
LINE_LIMIT = 300
ERROR_LIMIT = 1000

DAG_TEST_LOGGER = "airflow.sdk.definitions.dag"
"""The logger ``dag.test()`` announces each task try on (3.0 to 3.3)."""
TRY_MARK = "\x00crm-try"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<index>-?\d+)")
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Timeout)\b(?::.*)?$")
_NOISE = (
    "::group::",
    "::endgroup::",
    "[DAG TEST]",
    "execution_api",
    "HTTP Request:",
    "[debug",
    "[py.warnings]",
    "Task started",
    "Task instance state updated",
    "RenderedTaskInstanceFields",
)
"""Airflow's own bookkeeping lines, left out of a failed task's log tail."""
_BOX = ("│", "╭", "╰", "┌", "└")
"""Line starts of the boxed tracebacks Airflow 3.0 prints."""


@dataclass
class CrmAirflow:
    """What the ``crm_airflow`` fixture hands a test: the sandbox, the connections pointing at it,
    and :meth:`run` to run a DAG file in Airflow."""

    sandbox: Sandbox
    home: Path
    rootdir: Path
    monkeypatch: pytest.MonkeyPatch
    connections: dict[str, str] = field(default_factory=dict)
    """Connection id → vendor of every connection set up for this test."""

    def connect(self, conn_id: str, vendor: str, extra: Mapping[str, Any] | None = None, **fields: Any) -> str:
        """Point ``conn_id`` at the sandbox's ``vendor`` (through ``AIRFLOW_CONN_<ID>``, undone after
        the test) and return the id. ``extra`` sets connection extras such as ``{"max_attempts": 1}``;
        ``fields`` replace connection fields, e.g. ``password="wrong"`` to test a refused token."""
        connection: dict[str, Any] = dict(self.sandbox.airflow_connection(vendor)) | fields
        if extra:
            connection["extra"] = dict(extra)
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        self.connections[conn_id] = vendor
        return conn_id

    def run(
        self,
        dag: str | os.PathLike[str],
        *,
        dag_id: str | None = None,
        dags_folder: str | os.PathLike[str] | None = None,
        conf: Mapping[str, Any] | None = None,
        logical_date: Any = None,
        check: bool = True,
    ) -> Any:
        """Run a DAG with ``dag.test()`` and return Airflow's ``DagRun``.

        ``dag`` is a DAG file (absolute, or relative to pytest's rootdir) or, with ``dags_folder``,
        a DAG id to find in that folder. ``dag_id`` picks one DAG of a file that defines several.
        ``dags_folder`` is the root the DAG's imports are relative to (default: the file's folder);
        it is put on ``sys.path`` and used as the run's DAG bundle. With ``check`` (the default) the
        test fails unless every task instance succeeded or was skipped.
        """
        folder, file, wanted = self._locate(dag, dag_id, dags_folder)
        kwargs: dict[str, Any] = {"run_conf": dict(conf) if conf is not None else None}
        if logical_date is not None:
            kwargs["logical_date"] = logical_date
        with _on_sys_path(folder):
            loaded = _load_dag(file, wanted)
            bundles = _bundle_config(folder, file)
            with _env({BUNDLE_ENV: bundles} if bundles else {}), _teed() as output:
                dag_run = loaded.test(**kwargs)
        if check:
            problems = failed_tasks(dag_run)
            if problems or str(dag_run.state) != "success":
                pytest.fail(failure_report(dag_run, problems, output.getvalue()), pytrace=False)
        return dag_run

    def xcom(self, dag_run: Any, task_id: str, key: str = "return_value", *, map_index: int | None = None) -> Any:
        """The XCom ``key`` a task of ``dag_run`` pushed (its return value by default)."""
        instances = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
        if not instances:
            raise KeyError(f"the run of {dag_run.dag_id!r} has no task {task_id!r}")
        kwargs: dict[str, Any] = {"task_ids": task_id, "key": key}
        if map_index is not None:
            kwargs["map_indexes"] = map_index
        return instances[0].xcom_pull(**kwargs)

    def task_states(self, dag_run: Any) -> dict[str, str]:
        """Each task's final state (``task_id[map_index]`` for mapped ones)."""
        return {_label(ti): str(ti.state) for ti in dag_run.get_task_instances()}

    # -- finding the DAG ----------------------------------------------------------------------

    def _locate(
        self, dag: str | os.PathLike[str], dag_id: str | None, dags_folder: str | os.PathLike[str] | None
    ) -> tuple[Path, Path, str | None]:
        """(bundle folder, file or folder to load, DAG id wanted)."""
        folder = self._path(dags_folder) if dags_folder is not None else None
        file = self._path(dag)
        if file.suffix == ".py" or file.is_file() or folder is None:
            if not file.is_file():
                raise FileNotFoundError(
                    f"no DAG file {file} (relative paths are read from {self.rootdir}); "
                    "to run a DAG by its id, pass dags_folder="
                )
            folder = folder or file.parent
            if not file.is_relative_to(folder):
                raise ValueError(f"the DAG file {file} is not inside dags_folder {folder}")
            return folder, file, dag_id
        return folder, folder, str(dag)

    def _path(self, raw: str | os.PathLike[str]) -> Path:
        path = Path(raw).expanduser()
        return (path if path.is_absolute() else self.rootdir / path).resolve()


# -- loading --------------------------------------------------------------------------------------


def _dagbag(path: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0/3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    # Before 3.1 a DagBag adds Airflow's example DAGs when [core] load_examples is on.
    kwargs: dict[str, Any] = {}
    if "include_examples" in inspect.signature(DagBag).parameters:
        kwargs["include_examples"] = False
    return DagBag(dag_folder=str(path), **kwargs)


def _load_dag(path: Path, dag_id: str | None) -> Any:
    bag = _dagbag(path)
    if bag.import_errors:
        errors = "\n".join(f"{file}:\n{error}" for file, error in bag.import_errors.items())
        pytest.fail(f"the DAG file(s) in {path} do not import:\n{errors}", pytrace=False)
    ids = sorted(dag_id for dag_id, dag in bag.dags.items() if Path(dag.fileloc).resolve().is_relative_to(path))
    if dag_id is None:
        if len(ids) != 1:
            pytest.fail(f"{path} defines {len(ids)} DAGs ({', '.join(ids) or 'none'}); pass dag_id=", pytrace=False)
        dag_id = ids[0]
    if dag_id not in ids:
        pytest.fail(f"no DAG {dag_id!r} in {path}; it defines {', '.join(ids) or 'none'}", pytrace=False)
    return bag.get_dag(dag_id)


def _bundle_config(folder: Path, file: Path) -> str | None:
    """The bundle list with ``folder`` added, or ``None`` when a configured local bundle holds ``file``."""
    from airflow import settings
    from airflow.configuration import conf

    configured = conf.getjson("dag_processor", "dag_bundle_config_list", fallback=None)
    bundles = [b for b in configured if isinstance(b, dict)] if isinstance(configured, list) else []
    for bundle in bundles:
        if str(bundle.get("classpath", "")).endswith("LocalDagBundle") and bundle.get("name") != BUNDLE_NAME:
            path = (bundle.get("kwargs") or {}).get("path") or settings.DAGS_FOLDER
            if file.is_relative_to(Path(path).resolve()):
                return None
    ours = {"name": BUNDLE_NAME, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(folder), "refresh_interval": 0}}
    return json.dumps([b for b in bundles if b.get("name") != BUNDLE_NAME] + [ours])


@contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    """The DAG folder on ``sys.path`` during the run, as Airflow's DAG processor puts a bundle's."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


class _Tee(io.TextIOBase):
    """Writes through to the real stream and keeps a copy, so a failure can quote the task's log."""

    def __init__(self, inner: TextIO, copy: io.StringIO) -> None:
        self._inner = inner
        self._copy = copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._inner.write(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._inner, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._inner, "errors", None)

    def fileno(self) -> int:
        return self._inner.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TryMarker(logging.Handler):
    """Marks where each try of a task starts in the copy of the output.

    ``dag.test()`` logs "[DAG TEST] starting task_id=..." through the standard logging module, and
    whether that line also reaches stdout depends on the logging setup (under pytest it does not),
    so the try boundaries are taken from the log record and written as one unambiguous line.
    """

    def __init__(self, copy: io.StringIO) -> None:
        super().__init__(logging.INFO)
        self._copy = copy

    def emit(self, record: logging.LogRecord) -> None:
        start = _TASK_START.search(record.getMessage())
        if start:
            self._copy.write(f"\n{TRY_MARK} {start['task']} {start['index']}\n")


@contextmanager
def _teed() -> Iterator[io.StringIO]:
    """Copy everything the run prints (stdout, stderr) and where each task try starts."""
    copy = io.StringIO()
    saved = sys.stdout, sys.stderr
    logger = logging.getLogger(DAG_TEST_LOGGER)
    level = logger.level
    marker = _TryMarker(copy)
    logger.addHandler(marker)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    sys.stdout, sys.stderr = _Tee(saved[0], copy), _Tee(saved[1], copy)
    try:
        yield copy
    finally:
        sys.stdout, sys.stderr = saved
        logger.removeHandler(marker)
        logger.setLevel(level)


# -- reporting ------------------------------------------------------------------------------------


def _label(ti: Any) -> str:
    index = getattr(ti, "map_index", -1)
    return ti.task_id if index is None or index < 0 else f"{ti.task_id}[{index}]"


def failed_tasks(dag_run: Any) -> list[Any]:
    """Task instances that neither succeeded nor were skipped, in task order."""
    instances = sorted(dag_run.get_task_instances(), key=lambda ti: (ti.task_id, ti.map_index))
    return [ti for ti in instances if str(ti.state) not in SUCCEEDED]


def _tries(output: str, task_id: str, map_index: int) -> list[list[str]]:
    """The log lines of each try of one task instance, from ``dag.test()``'s output."""
    lines = _ANSI.sub("", output).splitlines()
    tries: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if line.startswith(TRY_MARK):
            _, task, index = line.split(" ")
            current = [] if (task, int(index)) == (task_id, map_index) else None
            if current is not None:
                tries.append(current)
            continue
        if current is not None and "[DAG TEST]" not in line:
            current.append(line)
    return tries


def _cut(line: str, limit: int = LINE_LIMIT) -> str:
    line = line.rstrip()
    return line if len(line) <= limit else line[:limit] + "…"


def _error_line(lines: list[str]) -> str | None:
    """The last exception line (``ValueError: ...``) with its continuation lines: Airflow 3.0
    prints tracebacks wrapped at 80 columns."""
    found = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line.strip()) and not line.startswith(_BOX)]
    if not found:
        return None
    parts = [lines[found[-1]].strip()]
    for line in lines[found[-1] + 1 : found[-1] + 6]:
        if not line.strip() or line[:1].isdigit() or line.startswith(("[", *_BOX)):
            break
        parts.append(line.strip())
    return _cut(" ".join(parts), ERROR_LIMIT)


def _tail(lines: list[str]) -> list[str]:
    """The last lines the task logged before its traceback, without Airflow's own bookkeeping."""
    end = next((i for i, line in enumerate(lines) if line.startswith("Traceback") or "╭" in line), len(lines))
    kept = [
        _cut(line)
        for line in lines[:end]
        if line.strip() and not line.lstrip().startswith(_BOX) and not any(noise in line for noise in _NOISE)
    ]
    return kept[-LOG_TAIL_LINES:]


def failure_report(dag_run: Any, problems: list[Any], output: str) -> str:
    """Why a run failed: each task that did not succeed, its state, tries, error and log tail."""
    total = len(dag_run.get_task_instances())
    head = f"DAG {dag_run.dag_id!r} run {dag_run.run_id}: {dag_run.state!s}"
    lines = [f"{head}; {len(problems)} of {total} task instance(s) did not succeed"]
    for ti in problems:
        state = str(ti.state)
        tries = _tries(output, ti.task_id, getattr(ti, "map_index", -1))
        line = f"- {_label(ti)}: {state}"
        if tries:
            line += f" after {len(tries)} {'try' if len(tries) == 1 else 'tries'}"
        lines.append(line)
        errors = [(n, error) for n, lines_ in enumerate(tries, start=1) if (error := _error_line(lines_))]
        for number, error in errors[:1] + errors[1:][-2:]:
            lines.append(f"    error (try {number}): {error}")
        if tries and (tail := _tail(tries[-1])):
            lines.append("    log tail:")
            lines += [f"      {entry}" for entry in tail]
    lines.append("(the whole output of the run is in the captured stdout)")
    return "\n".join(lines)
