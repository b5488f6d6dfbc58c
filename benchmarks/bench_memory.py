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
    baseline = rss_mb()
    samples: list[tuple[float, float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(samples, Path(args.ledger), stop), daemon=True)
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
    result = {
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "samples": samples,
        "elapsed_s": elapsed,
        "summary": summary,
        "error": error,
    }
    Path(args.out).write_text(json.dumps(result, default=str))


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
        source, ledger, out = workdir / "orders.jsonl", workdir / "ledger.jsonl", workdir / "result.json"
        generate(source, records)
        with SandboxProcess() as sandbox:
            # A reported budget too large to make the hook hold back; nothing is enforced in practice.
            sandbox.configure("hubspot", {"burst_limit": 10**9, "interval_ms": 1000})
            sandbox_cpu = sandbox.cpu_seconds()
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                f"--source={source}",
                f"--ledger={ledger}",
                f"--dead-letter={workdir / 'dead.jsonl'}",
                f"--connection={json.dumps(sandbox.airflow_connection('hubspot'))}",
                f"--out={out}",
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(f"memory worker failed:\n{done.stderr[-3000:]}")
            result = json.loads(out.read_text())
            stored = sandbox.count("hubspot")
            statuses = sandbox.write_statuses("hubspot")
            sandbox_rss = sandbox.rss_mb()
            sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
        ledger_lines = _count_lines(ledger) if ledger.exists() else 0

    samples, elapsed = result["samples"], float(result["elapsed_s"])
    baseline, peak = float(result["baseline_mb"]), float(result["peak_mb"])
    at_10, at_end = _at_progress(samples, 0.10), samples[-1][1]
    growth = at_end - at_10
    flat = growth <= max(FLAT_MB, FLAT_SHARE * at_10)
    summary = result["summary"]
    label = f"{records:,}"
    peak_row = Row(
        benchmark="memory",
        measured=f"peak RSS (VmHWM) of the process running HubSpotBulkUpsertOrdersOperator over {label} JSONL "
        "records, batches of 100, ledger on; sandbox in another process",
        ours=f"{peak:.0f} MB",
        baseline=f"{baseline:.0f} MB (before execute)",
        ratio=fmt_ratio(peak / baseline),
        target=f"< {TARGET_PEAK_MB:.0f} MB",
        passed=peak < TARGET_PEAK_MB and summary is not None,
    )
    growth_row = Row(
        benchmark="memory",
        measured="RSS growth from 10% to 100% of the records (progress read from the ledger's size)",
        ours=f"{growth:+.1f} MB ({at_10:.0f} → {at_end:.0f} MB)",
        baseline="-",
        ratio=fmt_ratio(at_end / at_10),
        target=f"flat: ≤ {FLAT_MB:.0f} MB or ≤ {FLAT_SHARE:.0%}",
        passed=flat and summary is not None,
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
    return BenchResult(NAME, [peak_row, growth_row], notes, {"result": result, "stored": stored})


def _short(summary: dict[str, Any]) -> str:
    keys = ("total", "created", "updated", "unchanged", "rejected", "elapsed_s")
    return ", ".join(f"{key}={summary.get(key)}" for key in keys)


def main() -> int:
    if "--worker" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--worker", action="store_true")
        for option in ("--source", "--ledger", "--dead-letter", "--connection", "--out"):
            parser.add_argument(option, required=True)
        worker(parser.parse_args())
        return 0
    return standalone(NAME, run, __doc__ or NAME)


if __name__ == "__main__":
    sys.exit(main())
