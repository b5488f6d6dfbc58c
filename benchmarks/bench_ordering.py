"""What ordering by key costs a bulk run whose records all have different keys (target: nothing).

The bulk runner writes records that share a key one at a time, in input order; records of other
keys must flow as before. Measured side by side in one process: the runner as shipped, and the
same runner with a gate that admits every record at once (the behaviour before ordering), on the
same records with distinct keys, in alternating rounds (ABBA) so drift hits both alike. Each row's
ratio is ordered ÷ unordered records per second, the median of per-round ratios (after one
uncounted warm-up run of each).

- ``runner, per-record``: a writer that takes 1 ms per record (a request's wait, GIL released),
  4 workers: the per-record vendors (Kustomer, Kaiten, MicroBase).
- ``runner, batches of 100``: 5 ms per batch, 4 workers: HubSpot's batch calls.
- ``runner, no wait``: a writer that returns at once; the runner's own cost per record, the worst
  case for any bookkeeping (context only: no real write is this fast).
- ``Kustomer operator over HTTP``: ``KustomerBulkCreateKObjectsOperator`` (lookup by external id,
  then create) against the sandbox in its own process, no rate limit, 4 workers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import BULK_MODULE, BenchResult, BenchUnavailable, Row, fmt_ratio, median, quiet_logging, standalone

NAME = "ordering"
TARGET = 0.95
MAX_WORKERS = 4
CONN_ID = "bench_kustomer_ordering"


@dataclass(frozen=True)
class Workload:
    label: str
    measured: str
    records: int
    batch_size: int
    unit_seconds: float
    target: float | None


def _gates() -> tuple[type[Any], type[Any]]:
    """The runner's gate, and one that admits everything (no ordering): the baseline."""
    try:
        from airflow_provider_crm.bulk.ordering import KeyGate
    except ImportError as exc:
        raise BenchUnavailable(f"the bulk runner has no key ordering here ({exc})") from exc

    class Unordered(KeyGate):  # type: ignore[type-arg]
        def admit(self, item: Any) -> bool:
            return True

        def done(self, key: str) -> None:
            return None

    return KeyGate, Unordered


class SleepingWriter:
    """Takes ``unit_seconds`` per unit (as a request would, without holding the GIL) and writes nothing."""

    def __init__(self, batch_size: int, unit_seconds: float) -> None:
        self.batch_size = batch_size
        self.unit_seconds = unit_seconds

    def key(self, record: dict[str, Any], index: int) -> str:
        return str(record["id"])

    def prepare(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def write(self, items: list[Any]) -> list[Any]:
        from airflow_provider_crm.bulk.ledger import UPDATED, Outcome

        if self.unit_seconds:
            time.sleep(self.unit_seconds)
        return [Outcome(item.index, item.key, UPDATED) for item in items]

    preview = write


def _runner_rate(workload: Workload, gate: type[Any]) -> float:
    """Records per second of one run of the runner with ``gate``."""
    from airflow_provider_crm.bulk.ledger import JsonLinesWriter, Ledger
    from airflow_provider_crm.bulk.policy import ErrorPolicy
    from airflow_provider_crm.bulk.runner import BulkRunner

    class Runner(BulkRunner):
        key_gate = gate

    runner = Runner(
        SleepingWriter(workload.batch_size, workload.unit_seconds),
        Ledger(JsonLinesWriter(None), JsonLinesWriter(None)),
        ErrorPolicy("warn", 1.0),
        max_workers=MAX_WORKERS,
    )
    records = ({"id": f"k-{n}"} for n in range(workload.records))
    started = time.perf_counter()
    summary = runner.run(records)
    elapsed = time.perf_counter() - started
    if summary.counts.get("updated") != workload.records:
        raise RuntimeError(f"{workload.label}: {summary.counts} for {workload.records} records")
    return workload.records / elapsed


def _kustomer_rate(sandbox: Any, records: int, gate: type[Any], round_: int) -> float:
    """Records per second of one Kustomer bulk create (distinct external ids, a fresh klass)."""
    import importlib

    from airflow_provider_crm.bulk.runner import BulkRunner

    bulk = importlib.import_module(BULK_MODULE)
    klass = f"bench-ordering-{round_ + 1}-{gate.__name__.lower()}"
    operator = bulk.KustomerBulkCreateKObjectsOperator(
        task_id="bench_ordering",
        klass_name=klass,
        mode="per_record",  # one request per record: the runner's ordering cost, not bulk jobs
        records=[{"external_id": f"o-{n}", "title": f"Order {n}"} for n in range(records)],
        on_record_error="warn",
        max_reject_ratio=1.0,
        max_workers=MAX_WORKERS,
        rate_limit=0,
        kustomer_conn_id=CONN_ID,
    )
    shipped = BulkRunner.key_gate
    BulkRunner.key_gate = gate  # the operator builds its own runner
    try:
        started = time.perf_counter()
        summary = operator.execute({})
        elapsed = time.perf_counter() - started
    finally:
        BulkRunner.key_gate = shipped
    stored = sandbox.count("kustomer", klass)
    if summary["created"] != records or stored != records:
        raise RuntimeError(f"Kustomer run: {summary} with {stored} stored, for {records} records")
    sandbox.reset("kustomer")
    return records / elapsed


def _side_by_side(rounds: int, measure: Callable[[type[Any], int], float]) -> tuple[float, float, float]:
    """Median records/s of ordered and unordered runs and the median per-round ratio (ABBA order)."""
    ordered_gate, unordered_gate = _gates()
    ordered: list[float] = []
    unordered: list[float] = []
    for gate in (ordered_gate, unordered_gate):  # warm-up (imports, connections, caches); not counted
        measure(gate, -1)
    for round_ in range(rounds):
        first, second = (ordered_gate, unordered_gate) if round_ % 2 == 0 else (unordered_gate, ordered_gate)
        for gate in (first, second):
            (ordered if gate is ordered_gate else unordered).append(measure(gate, round_))
    ratios = [o / u for o, u in zip(ordered, unordered, strict=True)]
    return median(ordered), median(unordered), median(ratios)


def _row(measured: str, ordered: float, unordered: float, ratio: float, target: float | None) -> Row:
    return Row(
        benchmark="ordering by key",
        measured=measured,
        ours=f"{ordered:,.0f} rec/s",
        baseline=f"{unordered:,.0f} rec/s (no ordering)",
        ratio=fmt_ratio(ratio),
        target=f"≥ {target}" if target is not None else "context",
        passed=None if target is None else ratio >= target,
    )


def run(quick: bool) -> BenchResult:
    _gates()
    import airflow.sdk  # noqa: F401  (Airflow configures logging on import; quiet it afterwards)
    from _sandbox import SandboxProcess

    quiet_logging()
    rounds = 4 if quick else 8
    scale = 1 if quick else 2
    workloads = [
        Workload(
            "per-record",
            "runner, distinct keys, 1 ms per record, 4 workers",
            2_000 * scale,
            1,
            0.001,
            TARGET,
        ),
        Workload(
            "batches",
            "runner, distinct keys, batches of 100 at 5 ms each, 4 workers",
            50_000 * scale,
            100,
            0.005,
            TARGET,
        ),
        Workload(
            "no wait", "runner, distinct keys, writer returns at once (runner's own cost)", 20_000 * scale, 1, 0, None
        ),
    ]
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for workload in workloads:
        ordered, unordered, ratio = _side_by_side(rounds, lambda gate, _round, w=workload: _runner_rate(w, gate))
        rows.append(
            _row(f"{workload.measured}; {workload.records:,} records", ordered, unordered, ratio, workload.target)
        )
        raw[workload.label] = (ordered, unordered, ratio)

    records = 500 * scale
    with SandboxProcess() as sandbox:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            sandbox.airflow_connection("kustomer", rate_limit_per_second=0)
        )
        ordered, unordered, ratio = _side_by_side(
            rounds, lambda gate, round_: _kustomer_rate(sandbox, records, gate, round_)
        )
    rows.append(
        _row(
            f"KustomerBulkCreateKObjectsOperator over HTTP (sandbox in its own process, no rate limit), "
            f"distinct external ids, 4 workers; {records:,} records",
            ordered,
            unordered,
            ratio,
            TARGET,
        )
    )
    raw["kustomer"] = (ordered, unordered, ratio)
    notes = [
        f"{rounds} alternating rounds per row; ratio = median of per-round ordered ÷ unordered records/s. "
        "The baseline is the same runner with a gate that admits every record at once, i.e. no ordering by key."
    ]
    return BenchResult(NAME, rows, notes, raw)


if __name__ == "__main__":
    sys.exit(standalone(NAME, run, __doc__ or NAME))
