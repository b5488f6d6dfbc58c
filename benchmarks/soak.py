"""Fault soak: 10,000 records per vendor through the bulk operators with 10% of requests faulted.

The sandbox's chaos mode injects a seeded mix of 429s, 5xx, gateway pages, connections dropped
before and after the write is stored, slow and mangled responses. Afterwards the sandbox's state
and our ledger must show every record written or rejected with a reason: none lost, none
duplicated. Prints a Markdown table; exits 1 if anything was lost or duplicated.

    python benchmarks/soak.py                 # 10,000 records per vendor (several minutes)
    python benchmarks/soak.py --records 2000  # shorter
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records per vendor (default 10,000)")
    parser.add_argument("--rate", type=float, default=0.1, help="share of requests faulted (default 0.1)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="crm-soak-"))
    sys.path.insert(0, str(REPO_DIR))
    logging.disable(logging.WARNING)
    from tests.faults.suite import VENDORS, run_fault_suite

    rows = [run_fault_suite(vendor, args.records, seed=args.seed, rate=args.rate) for vendor in VENDORS]
    rows.insert(1, run_fault_suite("kustomer", args.records, seed=args.seed, rate=args.rate, kustomer_mode="bulk_job"))
    header = list(rows[0].as_row())
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(value) for value in row.as_row().values()) + " |")
    print()
    for row in rows:
        print(f"- {row.vendor} faults: " + ", ".join(f"{kind} {count}" for kind, count in sorted(row.faults.items())))
    return 0 if all(row.lost == 0 and row.duplicates == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
