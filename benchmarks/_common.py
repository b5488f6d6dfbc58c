"""Shared pieces of the benchmarks: result rows, the Markdown table, statistics and process setup.

The machine the benchmarks run on is assumed to be shared and noisy, so every benchmark
measures its subject and a baseline side by side in one run and reports their ratio; absolute
numbers are printed for context only.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
BULK_MODULE = "airflow_provider_crm.operators.bulk"


class BenchUnavailable(RuntimeError):
    """The benchmark cannot run here (e.g. the code it measures does not exist yet)."""


@dataclass
class Row:
    """One line of the results table; ``passed`` is ``None`` for rows that are context only."""

    benchmark: str
    measured: str
    ours: str
    baseline: str
    ratio: str
    target: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "**FAIL**", None: "-"}[self.passed]


@dataclass
class BenchResult:
    """What one benchmark reports: table rows, free-text notes and raw numbers for reuse."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(row.passed is False for row in self.rows)


def unavailable_result(name: str, benchmark: str, reason: str) -> BenchResult:
    """A single failing row explaining why a benchmark could not run."""
    return BenchResult(name, [Row(benchmark, f"not run: {reason}", "-", "-", "-", "-", False)])


def render_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    header = ["benchmark", "what was measured", "ours", "baseline", "ratio", "target", "pass/fail"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.benchmark, row.measured, row.ours, row.baseline, row.ratio, row.target, row.verdict]
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    return "\n".join(lines)


def render_results(results: Sequence[BenchResult]) -> str:
    """Table of every row, then the notes of every benchmark."""
    parts = [render_table([row for result in results for row in result.rows])]
    notes = [(result.name, note) for result in results for note in result.notes]
    if notes:
        parts.append("\nNotes:\n")
        parts.extend(f"- **{name}**: {note}" for name, note in notes)
    return "\n".join(parts)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> tuple[float, float]:
    """Lower and upper quartile (the middle half of the samples)."""
    if len(values) < 2:
        return (values[0], values[0])
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return (quartiles[0], quartiles[2])


def fmt_ratio(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def prepare_environment() -> None:
    """Quiet, self-contained Airflow settings for benchmark processes (inherited by children).

    A throwaway ``AIRFLOW_HOME`` keeps Airflow from writing into the user's home unless they
    chose one themselves; logging below ERROR is dropped so retries and 4xx logs of the tools
    under test do not flood the output (or cost time writing to the terminal).
    """
    if "AIRFLOW_HOME" not in os.environ:
        home = Path(tempfile.gettempdir()) / "airflow-provider-crm-bench-home"
        home.mkdir(exist_ok=True)
        os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    quiet_logging()


def quiet_logging() -> None:
    """Drop log records below CRITICAL, from ``logging`` and from Airflow's structlog loggers.

    Call it again after importing Airflow: Airflow configures structlog when it is imported.
    """
    logging.disable(logging.ERROR)
    try:
        import structlog
    except ImportError:
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    return parser.parse_args(argv)


def standalone(name: str, run: Callable[[bool], BenchResult], description: str) -> int:
    """Entry point shared by the ``bench_*.py`` scripts: run, print the table, exit 1 on failure."""
    args = parse_args(description)
    prepare_environment()
    started = time.monotonic()
    try:
        result = run(args.quick)
    except BenchUnavailable as exc:
        print(f"{name}: not run: {exc}", file=sys.stderr)
        return 2
    print(render_results([result]))
    print(f"\n({name} took {time.monotonic() - started:.0f} s{', --quick' if args.quick else ''})")
    return 1 if result.failed else 0


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
