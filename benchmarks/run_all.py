"""Run every benchmark and print one Markdown table (``--quick`` for a smaller, faster run).

Each benchmark is also a script of its own (``python benchmarks/bench_<name>.py``). A benchmark
that cannot run (e.g. the bulk operators are missing) or crashes gets a failing row saying why,
and the others still run. The peers run once: the throughput benchmark reuses their outcomes
from earlier in the same run instead of repeating them.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial

import bench_advertised_rate
import bench_call_overhead
import bench_deferrable_slots
import bench_import
import bench_incremental_sync
import bench_kustomer_bulk_jobs
import bench_kustomer_bulk_memory
import bench_memory
import bench_ordering
import bench_peers
import bench_throughput
from _common import BenchResult, BenchUnavailable, prepare_environment, render_results, unavailable_result

RUNNERS: dict[str, Callable[[bool], BenchResult]] = {
    "import": bench_import.run,
    "call_overhead": bench_call_overhead.run,
    "peers": bench_peers.run,
    "throughput": bench_throughput.run,
    "memory": bench_memory.run,
    "ordering": bench_ordering.run,
    "advertised_rate": bench_advertised_rate.run,
    "kustomer_bulk_jobs": bench_kustomer_bulk_jobs.run,
    "kustomer_bulk_memory": bench_kustomer_bulk_memory.run,
    "deferrable_slots": bench_deferrable_slots.run,
    "incremental_sync": bench_incremental_sync.run,
}
TITLES = {
    "import": "import",
    "call_overhead": "call overhead",
    "peers": "peers",
    "throughput": "throughput",
    "memory": "memory",
    "ordering": "ordering by key",
    "advertised_rate": "advertised rate",
    "kustomer_bulk_jobs": "kustomer bulk jobs",
    "kustomer_bulk_memory": "kustomer bulk jobs: memory",
    "deferrable_slots": "deferrable bulk jobs: worker slots",
    "incremental_sync": "incremental sync",
}


def _guarded(name: str, run: Callable[[], BenchResult]) -> BenchResult:
    print(f"running {name} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        result = run()
    except BenchUnavailable as exc:
        result = unavailable_result(name, TITLES[name], str(exc))
    except Exception as exc:
        traceback.print_exc()
        result = unavailable_result(name, TITLES[name], f"crashed: {type(exc).__name__}: {str(exc)[:300]}")
    print(f"  {name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(TITLES)}")
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(TITLES)
    unknown = sorted(set(selected) - set(TITLES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    prepare_environment()
    quick = args.quick
    started = time.monotonic()
    results: list[BenchResult] = []
    peers: BenchResult | None = None
    for name in selected:
        if name == "throughput":
            outcomes = peers.raw.get("outcomes") if peers is not None else None
            runner = partial(bench_throughput.run_with, quick, outcomes)
        else:
            runner = partial(RUNNERS[name], quick)
        result = _guarded(name, runner)
        if name == "peers":
            peers = result
        results.append(result)
    print(render_results(results))
    mode = "--quick" if quick else "full"
    print(f"\n({mode} run, {time.monotonic() - started:.0f} s; ratios are measured side by side in this run)")
    return 1 if any(result.failed for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
