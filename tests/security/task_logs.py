"""Task logs written to a file while ``dag.test()`` runs, so that secret scans have log files to read.

``dag.test()`` runs tasks in-process: Airflow writes their logs to stdout and creates no task log
file under the logs folder. For the duration of a run, everything Airflow's logging emits (after
its processors, the secrets masker among them) is also written to a file there, as a worker's
task log would be.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import structlog


class _TeeLogger:
    """Wraps the logger structlog writes rendered lines to, copying each line to a file."""

    def __init__(self, wrapped: Any, sink: TextIO) -> None:
        self._wrapped = wrapped
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._wrapped, name)
        if not callable(target):
            return target

        def write(message: Any = "", *args: Any, **kwargs: Any) -> Any:
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
            self._sink.write(text.rstrip("\n") + "\n")
            self._sink.flush()
            return target(message, *args, **kwargs)

        return write


@contextmanager
def task_log_file(logs_folder: Path) -> Iterator[Path]:
    """Copy all log output to a new file in ``logs_folder`` while the block runs; yields its path."""
    path = logs_folder / "dag_test" / f"{uuid.uuid4().hex}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    template = next((h for h in root.handlers if isinstance(h, logging.StreamHandler)), None)
    factory = structlog.get_config()["logger_factory"]
    with path.open("w", encoding="utf-8") as sink:
        handler = logging.StreamHandler(sink)
        if template is not None:
            handler.setFormatter(template.formatter)
            handler.setLevel(template.level)
        root.addHandler(handler)
        structlog.configure(logger_factory=lambda *args: _TeeLogger(factory(*args), sink))
        try:
            yield path
        finally:
            structlog.configure(logger_factory=factory)
            root.removeHandler(handler)
            sys.stdout.flush()


def read_log_files(logs_folder: Path) -> dict[str, str]:
    """Every file under the logs folder, by path."""
    return {str(path): path.read_text(errors="replace") for path in sorted(logs_folder.rglob("*")) if path.is_file()}
