"""100,000 KObjects through Kustomer bulk jobs (20,000 with ``--quick``): a complete ledger and flat memory.

``KustomerBulkCreateKObjectsOperator`` (``mode="bulk_job"``, the default) reads the records from a
JSON Lines file and writes a ledger, in a process of its own that samples its resident memory as
``bench_memory.py`` does; the sandbox runs in another process with no enforced limit (and a limit
advertised too high to make the client hold back) and jobs that take 0.1 s, so the run is short.
The ledger must hold one line per record, each key once, every record created with its own id, and
the sandbox must hold every record once (external ids are unique per klass, so a count equal to the
records means none is missing and none doubled). Memory must stay flat: its growth from 10% to 100%
of the ledger is compared with the same bounds as the memory benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _common import BenchResult, Row, prepare_environment
from _sandbox import SandboxProcess
from bench_memory import (
    SAMPLE_EVERY_S,
    WORKER_LEDGER,
    WORKER_SOURCE,
    memory_rows,
    run_worker,
    sampled_execute,
    worker_or_standalone,
)
from bench_peers import KLASS
from bench_throughput import load_bulk

NAME = "kustomer_bulk_memory"
BENCHMARK = "kustomer bulk jobs: memory"
RATE_LIMIT = 10_000.0  # requests/s: never the pace here; Kustomer's limit would make the run take minutes
PROCESSING_SECONDS = 0.1
POLL_INTERVAL = 0.1
CONN_ID = "bench_kustomer_bulk_memory"


def generate(path: Path, count: int) -> None:
    """Write ``count`` KObject creates, each with its own external id, as JSON Lines."""
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, count, 10_000):
            handle.writelines(
                json.dumps({"external_id": f"bulk-{i}", "title": f"Order {i}", "custom": {"totalNum": i}}) + "\n"
                for i in range(start, min(count, start + 10_000))
            )


def worker(args: argparse.Namespace) -> None:
    """Run the operator once in this process and write what was measured to ``args.out`` as JSON."""
    prepare_environment()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = args.connection
    from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator

    operator = KustomerBulkCreateKObjectsOperator(
        task_id="bench_kustomer_bulk_memory",
        klass_name=KLASS,
        source=args.source,
        ledger_path=args.ledger,
        dead_letter_path=args.dead_letter,
        on_record_error="warn",
        max_reject_ratio=1.0,
        rate_limit=RATE_LIMIT,
        poll_interval=POLL_INTERVAL,
        kustomer_conn_id=CONN_ID,
    )
    Path(args.out).write_text(json.dumps(sampled_execute(operator, Path(args.ledger)), default=str))


def read_ledger(path: Path) -> tuple[int, int, Counter[str], int]:
    """(lines, distinct keys, lines per action, distinct remote ids) of a ledger file."""
    lines, keys, ids, actions = 0, set(), set(), Counter[str]()
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                entry = json.loads(line)
                lines += 1
                keys.add(entry["key"])
                actions[entry["action"]] += 1
                if entry.get("remote_id"):
                    ids.add(entry["remote_id"])
    return lines, len(keys), actions, len(ids)


def run(quick: bool) -> BenchResult:
    load_bulk()
    records = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="crm-bench-kustomer-memory-") as tmp:
        workdir = Path(tmp)
        generate(workdir / WORKER_SOURCE, records)
        with SandboxProcess() as sandbox:
            # A limit advertised too high to make the hook hold back; nothing is enforced.
            settings = {"org_limit_per_minute": 10**9, "bulk_processing_seconds": PROCESSING_SECONDS}
            sandbox.configure("kustomer", settings)
            result = run_worker(Path(__file__), workdir, sandbox.airflow_connection("kustomer"))
            stored = sandbox.count("kustomer", KLASS)
            requests = Counter(entry["method"] for entry in sandbox.journal("kustomer"))
        lines, keys, actions, ids = read_ledger(workdir / WORKER_LEDGER)
    created = actions.get("created", 0)
    complete_row = Row(
        benchmark=BENCHMARK,
        measured=f"{records:,} KObjects from JSONL through bulk jobs: ledger lines / distinct keys / distinct ids / "
        "created, and KObjects in sandbox state",
        ours=f"{lines:,} / {keys:,} / {ids:,} / {created:,}; {stored:,} stored",
        baseline="-",
        ratio="-",
        target=f"all {records:,}",
        passed=lines == keys == ids == created == stored == records and result["summary"] is not None,
    )
    subject = (
        f"the operator's process (KustomerBulkCreateKObjectsOperator, {records:,} records, ledger on); "
        "sandbox in another process"
    )
    rows = [complete_row, *memory_rows(BENCHMARK, subject, result)]
    return BenchResult(NAME, rows, _notes(result, requests), {"result": result, "stored": stored})


def _notes(result: dict[str, Any], requests: Counter[str]) -> list[str]:
    summary, elapsed = result["summary"], float(result["elapsed_s"])
    outcome = (
        ", ".join(f"{key}={summary.get(key)}" for key in ("total", "created", "unchanged", "rejected"))
        if summary is not None
        else f"operator raised: {result['error']}"
    )
    return [
        f"{len(result['samples'])} RSS samples every {SAMPLE_EVERY_S * 1000:.0f} ms over {elapsed:.0f} s; {outcome}.",
        f"requests by method (the journal keeps the last 10,000): {dict(requests)}; jobs took "
        f"{PROCESSING_SECONDS:g} s, first poll after {POLL_INTERVAL:g} s, rate_limit={RATE_LIMIT:g}/s.",
    ]


if __name__ == "__main__":
    sys.exit(worker_or_standalone(NAME, run, worker, __doc__ or NAME))
