"""Peak memory of a bulk upsert of 1,000,000 records from a JSON Lines file (100,000 with ``--quick``).

A bulk operator that reads its input, its outcomes or its ledger into memory fails on a worker
with a memory limit once inputs grow; one that streams keeps a flat footprint whatever the size.
The operator (``HubSpotBulkUpsertOrdersOperator``, batches of 100, with a ledger file) runs in
its own process, which samples its resident memory (psutil) while it works and reports its peak
(``VmHWM`` on Linux); the sandbox runs in another process so the million stored
orders are not counted. The baseline is
the same process just before ``execute`` (Airflow and the provider imported), so the ratio is
what the run adds on top of what any task pays.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import BULK_MODULE, BenchResult, BenchUnavailable, Row, fmt_ratio, prepare_environment, standalone
from _sandbox import SandboxProcess, peak_rss_mb, rss_mb

NAME = "memory"
TARGET_PEAK_MB = 300.0
FLAT_MB = 25.0
FLAT_SHARE = 0.10
ID_PROPERTY = "hs_external_order_id"
RATE_LIMIT = 10_000.0  # requests/s: high enough not to throttle; the vendor default would make this take hours
SAMPLE_EVERY_S = 0.05
WORKER_SOURCE, WORKER_LEDGER = "records.jsonl", "ledger.jsonl"


def generate(path: Path, count: int) -> None:
    """Write ``count`` upsert records as JSON Lines."""
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, count, 10_000):
            handle.write(
                "".join(
                    f'{{"id": "ext-{i}", "properties": {{"hs_order_name": "Order {i}"}}}}\n'
                    for i in range(start, min(count, start + 10_000))
                )
            )


# -- the measured process -------------------------------------------------------------------------


def _sampler(samples: list[tuple[float, float, int]], ledger: Path, stop: threading.Event) -> None:
    """Append (seconds since start, RSS MB, ledger bytes) until ``stop`` is set."""
    started = time.monotonic()
    while not stop.is_set():
        size = ledger.stat().st_size if ledger.exists() else 0
        samples.append((time.monotonic() - started, rss_mb(), size))
        stop.wait(SAMPLE_EVERY_S)


def worker(args: argparse.Namespace) -> None:
    """Run the operator once and write what was measured to ``args.out`` as JSON."""
    prepare_environment()
    os.environ["AIRFLOW_CONN_BENCH_HUBSPOT_MEMORY"] = args.connection
    from airflow_provider_crm.operators.bulk import HubSpotBulkUpsertOrdersOperator

    operator = HubSpotBulkUpsertOrdersOperator(
        task_id="bench_memory_upsert",
        source=args.source,
        id_property=ID_PROPERTY,
        ledger_path=args.ledger,
        dead_letter_path=args.dead_letter,
        on_record_error="warn",
        max_reject_ratio=1.0,
        rate_limit=RATE_LIMIT,
        hubspot_conn_id="bench_hubspot_memory",
    )
    Path(args.out).write_text(json.dumps(sampled_execute(operator, Path(args.ledger)), default=str))


def sampled_execute(operator: Any, ledger: Path) -> dict[str, Any]:
    """Run ``operator.execute({})`` while sampling RSS; what was measured, JSON-ready."""
    baseline = rss_mb()
    samples: list[tuple[float, float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(samples, ledger, stop), daemon=True)
    sampler.start()
    started = time.perf_counter()
    error = ""
    summary: dict[str, Any] | None = None
    try:
        summary = dict(operator.execute({}))
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    return {
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "samples": samples,
        "elapsed_s": elapsed,
        "summary": summary,
        "error": error,
    }


# -- the orchestrating process --------------------------------------------------------------------


def _at_progress(samples: list[list[float]], share: float) -> float:
    """RSS when the ledger first reached ``share`` of its final size (time share if there is no ledger)."""
    final_size = samples[-1][2]
    final_time = samples[-1][0]
    for seconds, rss, size in samples:
        reached = size / final_size if final_size else seconds / final_time
        if reached >= share:
            return rss
    return samples[-1][1]


def run_worker(script: Path, workdir: Path, connection: dict[str, Any], extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run ``script --worker`` over the records in ``workdir``; what it measured (see :func:`sampled_execute`).

    The worker reads :data:`WORKER_SOURCE` and writes :data:`WORKER_LEDGER` in ``workdir``; ``extra``
    options follow the others (e.g. ``--state=...``, which :func:`worker_args` accepts).
    """
    out = workdir / "result.json"
    command = [
        sys.executable,
        str(script.resolve()),
        "--worker",
        f"--source={workdir / WORKER_SOURCE}",
        f"--ledger={workdir / WORKER_LEDGER}",
        f"--dead-letter={workdir / 'dead.jsonl'}",
        f"--connection={json.dumps(connection)}",
        f"--out={out}",
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"{script.stem} worker failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(out.read_text()))


def worker_args() -> argparse.Namespace:
    """The options :func:`run_worker` passes to a worker process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    for option in ("--source", "--ledger", "--dead-letter", "--connection", "--out"):
        parser.add_argument(option, required=True)
    parser.add_argument("--state", default="")
    return parser.parse_args()


def memory_rows(benchmark: str, subject: str, result: dict[str, Any]) -> list[Row]:
    """Peak RSS and its growth from 10% to 100% of the run, from what :func:`sampled_execute` measured.

    :param benchmark: The rows' benchmark name.
    :param subject: Whose memory it is, e.g. "the process running X over N records".
    :param result: What the worker measured.
    """
    samples = result["samples"]
    baseline, peak = float(result["baseline_mb"]), float(result["peak_mb"])
    at_10, at_end = _at_progress(samples, 0.10), samples[-1][1]
    growth = at_end - at_10
    ran = result["summary"] is not None
    peak_row = Row(
        benchmark=benchmark,
        measured=f"peak RSS (VmHWM) of {subject}",
        ours=f"{peak:.0f} MB",
        baseline=f"{baseline:.0f} MB (before execute)",
        ratio=fmt_ratio(peak / baseline),
        target=f"< {TARGET_PEAK_MB:.0f} MB",
        passed=peak < TARGET_PEAK_MB and ran,
    )
    growth_row = Row(
        benchmark=benchmark,
        measured="RSS growth from 10% to 100% of the records (progress read from the ledger's size)",
        ours=f"{growth:+.1f} MB ({at_10:.0f} → {at_end:.0f} MB)",
        baseline="-",
        ratio=fmt_ratio(at_end / at_10),
        target=f"flat: ≤ {FLAT_MB:.0f} MB or ≤ {FLAT_SHARE:.0%}",
        passed=growth <= max(FLAT_MB, FLAT_SHARE * at_10) and ran,
    )
    return [peak_row, growth_row]


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def run(quick: bool) -> BenchResult:
    if importlib.util.find_spec(BULK_MODULE) is None:
        raise BenchUnavailable(f"`{BULK_MODULE}` does not exist yet")
    records = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="crm-bench-memory-") as tmp:
        workdir = Path(tmp)
        source, ledger = workdir / WORKER_SOURCE, workdir / WORKER_LEDGER
        generate(source, records)
        with SandboxProcess() as sandbox:
            # A reported budget too large to make the hook hold back; nothing is enforced in practice.
            sandbox.configure("hubspot", {"burst_limit": 10**9, "interval_ms": 1000})
            sandbox_cpu = sandbox.cpu_seconds()
            result = run_worker(Path(__file__), workdir, sandbox.airflow_connection("hubspot"))
            stored = sandbox.count("hubspot")
            statuses = sandbox.write_statuses("hubspot")
            sandbox_rss = sandbox.rss_mb()
            sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
        ledger_lines = _count_lines(ledger) if ledger.exists() else 0

    samples, elapsed = result["samples"], float(result["elapsed_s"])
    peak = float(result["peak_mb"])
    summary = result["summary"]
    subject = (
        f"the process running HubSpotBulkUpsertOrdersOperator over {records:,} JSONL records, batches of 100, "
        "ledger on; sandbox in another process"
    )
    per_batch_cpu_ms = sandbox_cpu / max(1, sum(statuses.values())) * 1000
    sampled_peak = max(sample[1] for sample in samples)
    notes = [
        f"RSS sampled every {SAMPLE_EVERY_S * 1000:.0f} ms peaked at {sampled_peak:.0f} MB (the kernel's high-water "
        f"mark: {peak:.0f} MB); {len(samples)} samples over {elapsed:.0f} s.",
        f"{stored:,} orders stored for {records:,} records in {elapsed:.0f} s ({records / elapsed:,.0f} rec/s); "
        f"ledger lines: {ledger_lines:,}; write statuses (the journal keeps the last 10,000): {dict(statuses)}; "
        + (f"operator summary: {_short(summary)}" if summary else f"operator raised: {result['error']}"),
        f"sandbox process: {sandbox_rss:,.0f} MB RSS at the end (orders + journal), {per_batch_cpu_ms:.1f} ms CPU per "
        f"batch call — it used {sandbox_cpu / elapsed:.0%} of one core over the run"
        + (", so it, not the operator, may set the pace." if sandbox_cpu / elapsed > 0.8 else "."),
        f"rate_limit={RATE_LIMIT:g}/s and an unenforced sandbox budget: the vendor's default (10 requests/s) would "
        f"stretch this run to {records / 100 / 10 / 60:,.0f} min without changing its memory profile.",
    ]
    if stored != records:
        notes.append(f"**{records - stored:,} records are missing from the sandbox.**")
    return BenchResult(NAME, memory_rows("memory", subject, result), notes, {"result": result, "stored": stored})


def _short(summary: dict[str, Any]) -> str:
    keys = ("total", "created", "updated", "unchanged", "rejected", "elapsed_s")
    return ", ".join(f"{key}={summary.get(key)}" for key in keys)


def worker_or_standalone(
    name: str, run: Callable[[bool], BenchResult], worker: Callable[[argparse.Namespace], None], description: str
) -> int:
    """A memory benchmark's entry point: the measured worker process with ``--worker``, else the benchmark."""
    if "--worker" in sys.argv:
        worker(worker_args())
        return 0
    return standalone(name, run, description)


def main() -> int:
    return worker_or_standalone(NAME, run, worker, __doc__ or NAME)


if __name__ == "__main__":
    sys.exit(main())
