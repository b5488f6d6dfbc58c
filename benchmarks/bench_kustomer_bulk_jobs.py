"""Kustomer creates through bulk jobs against one request per record, under the same enforced org limit.

Kustomer's limit is one per-minute budget for the whole org, and a bulk request of up to 100
items counts once against it (developer.kustomer.com/docs/guides/bulk-operations), as do the GETs
that follow a job. Both runs use ``KustomerBulkCreateKObjectsOperator`` with the same
``rate_limit`` (the limit, per second) and ``max_workers``, against a sandbox in its own process
that enforces Kustomer Professional's 300 requests/min, takes 2 s to process each job and adds
50 ms to every request: ``mode="per_record"`` for the baseline, ``mode="bulk_job"`` (the default,
other settings as shipped) for ours. Records per minute are the records the sandbox holds divided by
the time from the run's first request to its last one, as the sandbox journal recorded them (for
bulk jobs the last one is the results read that settles the last records). Requests are counted
from the journal by kind: submits, status polls, results reads and anything else.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import BenchResult, Row, fmt_ratio, quiet_logging, standalone
from _sandbox import SandboxProcess
from bench_peers import KLASS, LATENCY_S, Workload, kustomer_records
from bench_throughput import _execute, _summary_text, load_bulk

NAME = "kustomer_bulk_jobs"
LIMIT_PER_MINUTE = 300
"""Kustomer Professional's org limit (vendor-apis.md: Professional 300/min, Enterprise 1,000/min)."""
PROCESSING_SECONDS = 2.0
TARGET_RATIO = 50.0
MAX_WORKERS = 4
BULK_ITEMS = 100


@dataclass
class Run:
    """One operator run, as the sandbox saw it."""

    label: str
    """The operator's mode and any other settings given."""
    records: int
    stored: int
    seconds: float
    """From the run's first request to its last, by the sandbox journal's clock."""
    requests: Counter[str]
    statuses: Counter[int | None]
    summary: str

    @property
    def lost(self) -> int:
        return self.records - self.stored

    @property
    def per_minute(self) -> float:
        return self.stored * 60 / self.seconds if self.seconds else 0.0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def limit_use(self) -> float:
        """Requests per minute over the run, as a share of the org limit."""
        return self.total_requests * 60 / self.seconds / LIMIT_PER_MINUTE if self.seconds else 0.0


def request_kind(entry: dict[str, Any]) -> str:
    """``submit``, ``poll``, ``results``, ``create`` (one record) or ``other``, from a journal entry."""
    segments = entry["segments"]
    if segments[-1:] == ["bulk"] and entry["method"] in ("POST", "PUT"):
        return "submit"
    if segments[:2] == ["v1", "bulk"]:
        return "results" if segments[-1:] == ["batches"] else "poll"
    if entry["method"] == "POST" and segments[:2] == ["v1", "klasses"] and len(segments) == 3:
        return "create"
    return "other"


def arm(sandbox: SandboxProcess) -> None:
    """Fresh Kustomer state and org window; the limit enforced, jobs taking 2 s, latency on every request."""
    sandbox.reset("kustomer")
    sandbox.configure(
        "kustomer",
        {
            "enforce_org_limit": True,
            "org_limit_per_minute": LIMIT_PER_MINUTE,
            "bulk_processing_seconds": PROCESSING_SECONDS,
        },
    )
    sandbox.inject("kustomer", {"kind": "latency", "seconds": LATENCY_S, "count": 10**9})


def create_operator(sandbox: SandboxProcess, tag: str, records: int, workdir: Path, **options: Any) -> Any:
    """A ``KustomerBulkCreateKObjectsOperator`` creating ``records`` KObjects (external ids prefixed ``tag``)
    at the org limit's rate, on a connection of its own to ``sandbox``; ``options`` are further arguments."""
    bulk = load_bulk()
    conn_id = f"bench_kustomer_{tag}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(sandbox.airflow_connection("kustomer"))
    workload = Workload("kustomer", records, LIMIT_PER_MINUTE / 60, f"org limit {LIMIT_PER_MINUTE}/min", tag, 60.0)
    return bulk.KustomerBulkCreateKObjectsOperator(
        task_id=conn_id,
        klass_name=KLASS,
        records=kustomer_records(workload),
        ledger_path=str(workdir / f"{tag}-ledger.jsonl"),
        dead_letter_path=str(workdir / f"{tag}-dead.jsonl"),
        on_record_error="warn",
        max_reject_ratio=1.0,
        rate_limit=workload.limit_rps,
        kustomer_conn_id=conn_id,
        **options,
    )


def run_mode(sandbox: SandboxProcess, mode: str, records: int, workdir: Path, **options: Any) -> Run:
    """Create ``records`` KObjects with ``mode`` (and operator ``options``) against a freshly armed sandbox."""
    tag = "-".join([mode, *(f"{name}{value}" for name, value in options.items())])
    operator = create_operator(sandbox, tag, records, workdir, mode=mode, max_workers=MAX_WORKERS, **options)
    arm(sandbox)
    summary, error, _ = _execute(operator)
    entries = sandbox.journal("kustomer")
    times = [entry["timestamp"] for entry in entries]
    return Run(
        label=", ".join([f"mode={mode}", *(f"{name}={value:g}" for name, value in options.items())]),
        records=records,
        stored=sandbox.count("kustomer", KLASS),
        seconds=max(times) - min(times) if times else 0.0,
        requests=Counter(request_kind(entry) for entry in entries),
        statuses=Counter(entry["status"] for entry in entries),
        summary=_summary_text(summary, error),
    )


def _requests_text(run: Run) -> str:
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(run.requests.items()))
    return f"{run.total_requests:,} requests ({kinds}), {run.statuses.get(429, 0)} 429s"


def _rows(ours: Run, baseline: Run) -> list[Row]:
    setting = (
        f"org limit {LIMIT_PER_MINUTE}/min enforced, jobs take {PROCESSING_SECONDS:g} s, "
        f"{LATENCY_S * 1000:.0f} ms latency; both: rate_limit={LIMIT_PER_MINUTE / 60:g}/s, max_workers={MAX_WORKERS}"
    )
    measured = (
        f"records/min stored, first to last request; {setting}; ours: mode=bulk_job, {ours.records:,} records; "
        f"baseline: mode=per_record, {baseline.records:,} records"
    )
    rate_row = _rate_row(measured, ours, baseline, gate=True)
    requests_row = Row(
        benchmark="kustomer bulk jobs",
        measured="requests the sandbox received (journal), and their rate as a share of the org limit",
        ours=f"{_requests_text(ours)}; {ours.total_requests / ours.records * BULK_ITEMS:.1f} per {BULK_ITEMS} "
        f"records; {ours.limit_use:.2f} of the limit",
        baseline=f"{_requests_text(baseline)}; {baseline.limit_use:.2f} of the limit",
        ratio="-",
        target="context",
        passed=None,
    )
    lost_row = Row(
        benchmark="kustomer bulk jobs",
        measured="records lost (KObjects of the klass in sandbox state ≠ records; external ids are unique per klass)",
        ours=f"{ours.lost} of {ours.records:,}",
        baseline=f"{baseline.lost} of {baseline.records:,}",
        ratio="-",
        target="0 lost",
        passed=ours.lost == 0 and baseline.lost == 0,
    )
    return [rate_row, requests_row, lost_row]


def _rate_row(measured: str, ours: Run, baseline: Run, *, gate: bool) -> Row:
    """Records per minute side by side; ``gate`` makes the row pass or fail on :data:`TARGET_RATIO`."""
    ratio = ours.per_minute / baseline.per_minute if baseline.per_minute else 0.0
    return Row(
        benchmark="kustomer bulk jobs",
        measured=measured,
        ours=f"{ours.per_minute:,.0f} rec/min" + ("" if gate else f", {ours.lost} lost"),
        baseline=f"{baseline.per_minute:,.0f} rec/min",
        ratio=fmt_ratio(ratio),
        target=f"≥ {TARGET_RATIO:g}x" if gate else "context",
        passed=ratio >= TARGET_RATIO and ours.lost == 0 if gate else None,
    )


def run(quick: bool) -> BenchResult:
    """The baseline (one request per record), then ours (bulk jobs), against one sandbox process."""
    load_bulk()
    import airflow.sdk  # noqa: F401  (Airflow configures logging on import; quiet it afterwards)

    quiet_logging()
    per_record, bulk_jobs = (100, 5_000) if quick else (200, 20_000)
    with tempfile.TemporaryDirectory(prefix="crm-bench-kustomer-bulk-") as tmp, SandboxProcess() as sandbox:
        workdir = Path(tmp)
        baseline = run_mode(sandbox, "per_record", per_record, workdir)
        ours = run_mode(sandbox, "bulk_job", bulk_jobs, workdir)
        tuned = run_mode(sandbox, "bulk_job", bulk_jobs, workdir, poll_interval=PROCESSING_SECONDS)
    requests_per_job = ours.total_requests / max(1, ours.requests.get("submit", 0))
    notes = [
        f"{run.label}: {run.stored:,}/{run.records:,} stored over {run.seconds:.1f} s; {run.summary}."
        for run in (baseline, ours, tuned)
    ]
    notes.append(
        f"each job of {BULK_ITEMS} records cost {requests_per_job:.1f} requests of the org budget on average (a "
        "submit, then reads of its batches until they are complete; a status poll only when a batches answer "
        f"cannot be judged). The ratio's ceiling is {BULK_ITEMS} ÷ requests per job: {TARGET_RATIO:g}x at 2 "
        "requests per job, whatever the limit."
    )
    tuned_measured = (
        f"the same with poll_interval={PROCESSING_SECONDS:g} (the jobs' processing time, so the first read of a job "
        f"comes no earlier), {tuned.records:,} records; {_requests_text(tuned)}"
    )
    rows = [*_rows(ours, baseline), _rate_row(tuned_measured, tuned, baseline, gate=False)]
    return BenchResult(NAME, rows, notes, {"ours": ours, "baseline": baseline, "tuned": tuned})


if __name__ == "__main__":
    sys.exit(standalone(NAME, run, __doc__ or NAME))
