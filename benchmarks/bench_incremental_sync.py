"""A nightly sync of 1,000,000 orders with 1% changed (100,000 with ``--quick``): incremental vs full, side by side.

``HubSpotBulkUpsertOrdersOperator`` reads the same JSON Lines file three times, each run in a process
of its own that samples its resident memory (as ``bench_memory.py`` does), against one sandbox process
that enforces no limit (so the full run is not stretched to the vendor's 10 requests/s):

1. the first night, ``skip_unchanged=True`` with no store yet: every record is sent and the store made;
2. a night on which nothing changed: nothing is sent, so this run is the operator going through its
   input (read, validate, fingerprint, one ledger line per record, load and save the store);
3. 1% of the records change; the next night, incremental: only those are sent;
4. the same changed file as a full sync (no ``state_path``), what a pipeline without a store sends.

Requests are counted by the sandbox (journal sequence numbers, so the 10,000-entry journal cap does
not matter). The incremental run is compared with the full sync (requests, wall time, memory) and
with night 2: a ratio near 1 means the run is dominated by going through the input, not by sending.
The same file read and validated alone in this process (no operator, no ledger, no store) is
reported too, to show what the operator's own bookkeeping costs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import BenchResult, Row, fmt_ratio, prepare_environment
from _sandbox import SandboxProcess
from bench_memory import (
    ID_PROPERTY,
    TARGET_PEAK_MB,
    WORKER_SOURCE,
    run_worker,
    sampled_execute,
    worker_or_standalone,
)
from bench_throughput import load_bulk

NAME = "incremental_sync"
BENCHMARK = "incremental sync"
RATE_LIMIT = 10_000.0
CHANGED_EVERY = 100  # 1% of the records
CONN_ID = "bench_incremental_sync"
TARGET_FEWER_REQUESTS = 50.0


def generate(path: Path, count: int, *, changed: bool) -> None:
    """``count`` upserts; when ``changed``, every 100th record carries a new name."""
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, count, 10_000):
            handle.write(
                "".join(
                    f'{{"id": "ext-{i}", "properties": {{"hs_order_name": "Order {i}'
                    f'{" v2" if changed and i % CHANGED_EVERY == 0 else ""}"}}}}\n'
                    for i in range(start, min(count, start + 10_000))
                )
            )


def worker(args: argparse.Namespace) -> None:
    """Run the operator once in this process; write what was measured to ``args.out``."""
    prepare_environment()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = args.connection
    from airflow_provider_crm.operators.bulk import HubSpotBulkUpsertOrdersOperator

    incremental = {"skip_unchanged": True, "state_path": args.state} if args.state else {}
    operator = HubSpotBulkUpsertOrdersOperator(
        task_id=NAME,
        source=args.source,
        ledger_path=args.ledger,
        id_property=ID_PROPERTY,
        rate_limit=RATE_LIMIT,
        hubspot_conn_id=CONN_ID,
        progress_interval=None,
        **incremental,
    )
    Path(args.out).write_text(json.dumps(sampled_execute(operator, Path(args.ledger)), default=str))


def _night(sandbox: SandboxProcess, workdir: Path, *, state: Path | None) -> dict[str, Any]:
    """One run in its own process: what it measured, plus the requests the sandbox received meanwhile."""
    before = _last_seq(sandbox)
    extra = [f"--state={state}"] if state else []
    result = run_worker(Path(__file__), workdir, sandbox.airflow_connection("hubspot"), extra)
    result["requests"] = _last_seq(sandbox) - before
    return result


def _last_seq(sandbox: SandboxProcess) -> int:
    entries = sandbox.journal("hubspot")
    return int(entries[-1]["seq"]) if entries else 0


def read_only(source: Path) -> float:
    """Seconds to read and validate every record of ``source`` the way the operator does, sending nothing."""
    prepare_environment()
    from airflow_provider_crm.bulk.sources import iter_records
    from airflow_provider_crm.bulk.writers import HubSpotBatchWriter

    writer = HubSpotBatchWriter(None, id_property=ID_PROPERTY, upsert=True, clear_nulls=False)  # type: ignore[arg-type]
    started = time.perf_counter()
    for index, record in enumerate(iter_records(None, str(source))):
        writer.key(record, index)  # type: ignore[arg-type]
        writer.prepare(record)  # type: ignore[arg-type]
    return time.perf_counter() - started


def run(quick: bool) -> BenchResult:
    load_bulk()
    records = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="crm-bench-incremental-") as tmp:
        workdir = Path(tmp)
        state = workdir / "orders.sync"
        generate(workdir / WORKER_SOURCE, records, changed=False)
        with SandboxProcess() as sandbox:
            sandbox.configure("hubspot", {"burst_limit": 10**9, "interval_ms": 1000})
            nights = {"first": _night(sandbox, workdir, state=state)}
            nights["unchanged"] = _night(sandbox, workdir, state=state)
            generate(workdir / WORKER_SOURCE, records, changed=True)
            nights["incremental"] = _night(sandbox, workdir, state=state)
            nights["full"] = _night(sandbox, workdir, state=None)
        reading = read_only(workdir / WORKER_SOURCE)
        store_mb = state.stat().st_size / 1e6
    return BenchResult(NAME, _rows(records, nights), _notes(nights, reading, store_mb), {"nights": nights})


def _rows(records: int, nights: dict[str, dict[str, Any]]) -> list[Row]:
    incremental, full, unchanged = nights["incremental"], nights["full"], nights["unchanged"]
    changed = records // CHANGED_EVERY
    summary = incremental["summary"] or {}
    fewer = full["requests"] / max(1, incremental["requests"])
    inc_s, full_s, floor_s = (float(nights[name]["elapsed_s"]) for name in ("incremental", "full", "unchanged"))
    ok = summary.get("skipped_unchanged") == records - changed and summary.get("updated") == changed
    ok = ok and unchanged["requests"] == 0
    peaks = {name: float(night["peak_mb"]) for name, night in nights.items()}
    return [
        Row(
            benchmark=BENCHMARK,
            measured=f"requests sent: nightly sync of {records:,} HubSpot orders from JSONL, {changed:,} changed (1%)",
            ours=f"{incremental['requests']:,} (skipped {summary.get('skipped_unchanged', 0):,}, "
            f"updated {summary.get('updated', 0):,})",
            baseline=f"{full['requests']:,} (full sync, no store)",
            ratio=f"{fewer:,.0f}x fewer",
            target=f"≥ {TARGET_FEWER_REQUESTS:.0f}x fewer",
            passed=ok and fewer >= TARGET_FEWER_REQUESTS,
        ),
        _wall_row(
            "the full sync of the same file (sandbox without a limit)", inc_s, full_s, "< 1", ok and inc_s < full_s
        ),
        _wall_row(
            "a night on which nothing changed (input only, nothing sent)",
            inc_s,
            floor_s,
            "dominated by the input (≤ 1.25)",
            ok and inc_s <= 1.25 * floor_s,
        ),
        Row(
            benchmark=BENCHMARK,
            measured="peak RSS (VmHWM): the incremental run (store of every key loaded and saved) vs the full sync",
            ours=f"{peaks['incremental']:.0f} MB (first night, store written: {peaks['first']:.0f} MB)",
            baseline=f"{peaks['full']:.0f} MB",
            ratio=fmt_ratio(peaks["incremental"] / peaks["full"]),
            target=f"< {TARGET_PEAK_MB:.0f} MB",
            passed=max(peaks.values()) < TARGET_PEAK_MB,
        ),
    ]


def _wall_row(baseline: str, seconds: float, baseline_seconds: float, target: str, passed: bool) -> Row:
    return Row(
        benchmark=BENCHMARK,
        measured=f"wall time: the incremental run vs {baseline}",
        ours=f"{seconds:.1f} s",
        baseline=f"{baseline_seconds:.1f} s",
        ratio=fmt_ratio(seconds / baseline_seconds),
        target=target,
        passed=passed,
    )


def _notes(nights: dict[str, dict[str, Any]], reading: float, store_mb: float) -> list[str]:
    def line(name: str, result: dict[str, Any]) -> str:
        summary = result["summary"] or {"error": result["error"]}
        keys = ("total", "created", "updated", "unchanged", "skipped_unchanged", "rejected", "error")
        counts = ", ".join(f"{key}={summary[key]}" for key in keys if key in summary)
        return (
            f"{name}: {result['requests']:,} requests, {float(result['elapsed_s']):.1f} s, "
            f"peak {float(result['peak_mb']):.0f} MB; {counts}"
        )

    full, incremental = int(nights["full"]["requests"]), int(nights["incremental"]["requests"])
    titles = {
        "first": "first night (no store yet: everything sent, store written)",
        "unchanged": "night with nothing changed",
        "incremental": "incremental night (1% changed)",
        "full": "full sync of the same file, no store",
    }
    return [
        *(line(titles[name], night) for name, night in nights.items()),
        f"the same file read and validated alone (no operator, ledger or store): {reading:.1f} s.",
        f"store on disk: {store_mb:.1f} MB for every key (fingerprint and HubSpot id per key).",
        f"at HubSpot's documented 10 requests/s the full sync's {full:,} requests alone would take "
        f"{full / 10 / 60:.0f} min, the incremental run's {incremental:,} {incremental / 10:.0f} s.",
    ]


if __name__ == "__main__":
    sys.exit(worker_or_standalone(NAME, run, worker, __doc__ or NAME))
