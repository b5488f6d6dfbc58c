"""Worker-slot seconds of a deferrable Kustomer bulk run against its wall time, for jobs that take minutes.

A deferrable run holds a worker slot only while it submits its jobs (``execute`` until it defers)
and while it collects them (``execute_complete``); between the two the triggerer waits. This
benchmark plays that sequence as Airflow does: ``execute`` until it raises ``TaskDeferred``, the
trigger rebuilt from its ``serialize()`` output (as the triggerer rebuilds it) and run on an event
loop until its first event, then ``execute_complete`` with that event. Worker-slot seconds are the
two worker steps; wall time runs from the first step's start to the last one's end. The baseline
is the same records with ``deferrable=False``, where the worker waits for the jobs itself and
holds its slot the whole run. Both runs: a sandbox in its own process taking ``PROCESSING_SECONDS``
to process each bulk job, Kustomer Professional's 300 requests/min enforced, 50 ms latency.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import BenchResult, Row, fmt_ratio, quiet_logging, standalone
from _sandbox import SandboxProcess
from bench_kustomer_bulk_jobs import LIMIT_PER_MINUTE, arm, create_operator
from bench_peers import KLASS
from bench_throughput import load_bulk

NAME = "deferrable_slots"
PROCESSING_SECONDS = 120.0
"""How long the sandbox takes to process each bulk job: minutes, as a large job at Kustomer may."""
QUICK_PROCESSING_SECONDS = 20.0
TARGET_SHARE = 0.1
"""The deferrable run holds a worker slot for at most this share of its wall time."""


@dataclass
class SlotRun:
    """Where one run's time went."""

    label: str
    records: int
    stored: int
    wall_s: float
    worker_s: float
    trigger_s: float
    summary: str

    @property
    def share(self) -> float:
        return self.worker_s / self.wall_s if self.wall_s else 0.0


def _task_deferred() -> type[BaseException]:
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # older Airflow 3
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
    return TaskDeferred


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise RuntimeError("the trigger ended without an event")


def _rebuilt(trigger: Any) -> Any:
    """The trigger as the triggerer runs it: rebuilt from its serialized class path and arguments."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def run_once(sandbox: SandboxProcess, records: int, workdir: Path, *, deferrable: bool) -> SlotRun:
    tag = "deferred" if deferrable else "worker"
    operator = create_operator(
        sandbox, tag, records, workdir, deferrable=deferrable, job_timeout=PROCESSING_SECONDS * 10
    )
    task_deferred = _task_deferred()
    started = time.perf_counter()
    trigger_s = 0.0
    try:
        summary = operator.execute({})
        worker_s = time.perf_counter() - started
    except task_deferred as deferred:
        worker_s = time.perf_counter() - started
        waited_from = time.perf_counter()
        event = asyncio.run(_first_event(_rebuilt(deferred.trigger)))
        trigger_s = time.perf_counter() - waited_from
        resumed = time.perf_counter()
        summary = getattr(operator, deferred.method_name)({}, event)
        worker_s += time.perf_counter() - resumed
    wall_s = time.perf_counter() - started
    keys = ("total", "created", "rejected")
    return SlotRun(
        label=f"deferrable={deferrable}",
        records=records,
        stored=sandbox.count("kustomer", KLASS),
        wall_s=wall_s,
        worker_s=worker_s,
        trigger_s=trigger_s,
        summary=", ".join(f"{key}={summary.get(key)}" for key in keys),
    )


def run(quick: bool) -> BenchResult:
    """The deferrable run, then the same records with the worker waiting, each against a fresh sandbox."""
    load_bulk()
    import airflow.sdk  # noqa: F401  (Airflow configures logging on import; quiet it afterwards)

    quiet_logging()
    processing = QUICK_PROCESSING_SECONDS if quick else PROCESSING_SECONDS
    records = 1_000 if quick else 2_000
    runs = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-slots-") as tmp, SandboxProcess() as sandbox:
        for deferrable in (True, False):
            arm(sandbox)
            sandbox.configure("kustomer", {"bulk_processing_seconds": processing})
            runs.append(run_once(sandbox, records, Path(tmp), deferrable=deferrable))
    ours, baseline = runs
    setting = (
        f"{records:,} KObjects in {records // 100} bulk jobs, each taking {processing:g} s to process; "
        f"org limit {LIMIT_PER_MINUTE}/min enforced"
    )
    rows = [
        Row(
            benchmark="deferrable bulk jobs",
            measured=f"worker-slot s ÷ wall s; {setting}; ours: deferrable=True, baseline: deferrable=False",
            ours=f"{ours.worker_s:.1f} s of {ours.wall_s:.1f} s ({ours.share:.3f}); triggerer {ours.trigger_s:.1f} s",
            baseline=f"{baseline.worker_s:.1f} s of {baseline.wall_s:.1f} s ({baseline.share:.3f})",
            ratio=fmt_ratio(ours.worker_s / baseline.worker_s if baseline.worker_s else 0.0),
            target=f"ours ≤ {TARGET_SHARE:g} of wall",
            passed=ours.share <= TARGET_SHARE and ours.stored == ours.records,
        ),
        Row(
            benchmark="deferrable bulk jobs",
            measured="records stored (sandbox state) of records sent",
            ours=f"{ours.stored:,} of {ours.records:,}",
            baseline=f"{baseline.stored:,} of {baseline.records:,}",
            ratio="-",
            target="0 lost",
            passed=ours.stored == ours.records and baseline.stored == baseline.records,
        ),
    ]
    notes = [f"{run.label}: {run.summary}; worker {run.worker_s:.1f} s, wall {run.wall_s:.1f} s." for run in runs]
    return BenchResult(NAME, rows, notes, {"ours": ours, "baseline": baseline})


if __name__ == "__main__":
    sys.exit(standalone(NAME, run, __doc__ or NAME))
