"""Import cost our operator modules add to a DAG file that already imports ``airflow.sdk``.

The scheduler's DAG processor imports every DAG file again and again, so an operator module
that pulls in heavy libraries at import time slows parsing of every DAG that uses it. Each
sample is a fresh interpreter (nothing cached in ``sys.modules``); the two variants run
alternately so machine noise hits both alike.

Two readings of the cost: the *marginal* one (time of the operator imports measured inside the
same interpreter, right after ``airflow.sdk`` is loaded — precise, judged against the target)
and the *end-to-end* one (median of variant B minus median of variant A — what a user would
time, but the ~1.5 s ``airflow.sdk`` import varies by more than the difference).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

from _common import BULK_MODULE, BenchResult, Row, fmt_ratio, median, spread, standalone

NAME = "import"
TARGET_MS = 50.0
OPERATOR_MODULES = (
    "airflow_provider_crm.operators.kustomer",
    "airflow_provider_crm.operators.kaiten",
    "airflow_provider_crm.operators.microbase",
    "airflow_provider_crm.operators.hubspot",
)

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from airflow.sdk import BaseOperator
t1 = time.perf_counter()
before = set(sys.modules)
for name in {modules!r}:
    __import__(name)
t2 = time.perf_counter()
added = sorted(set(sys.modules) - before)
print(json.dumps({{"sdk_ms": (t1 - t0) * 1e3, "ops_ms": (t2 - t1) * 1e3, "added": added}}))
"""


def operator_modules() -> tuple[str, ...]:
    """The operator modules a DAG would import (the bulk module once it exists)."""
    has_bulk = importlib.util.find_spec(BULK_MODULE) is not None
    return (*OPERATOR_MODULES, BULK_MODULE) if has_bulk else OPERATOR_MODULES


def sample(modules: tuple[str, ...]) -> dict[str, Any]:
    """One fresh interpreter importing ``airflow.sdk`` and then ``modules``."""
    code = _PROBE.format(modules=modules)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"import probe failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(quick: bool) -> BenchResult:
    repeats = 3 if quick else 7
    modules = operator_modules()
    sample(modules)  # warm-up: writes .pyc files, fills the OS page cache; not counted
    sdk_only: list[float] = []
    with_ops: list[float] = []
    marginal: list[float] = []
    added: list[str] = []
    for index in range(repeats):
        order = (False, True) if index % 2 == 0 else (True, False)
        for include_ops in order:
            result = sample(modules if include_ops else ())
            sdk_ms, ops_ms = float(result["sdk_ms"]), float(result["ops_ms"])
            if include_ops:
                with_ops.append(sdk_ms + ops_ms)
                marginal.append(ops_ms)
                added = list(result["added"])
            else:
                sdk_only.append(sdk_ms)

    base, ours, extra = median(sdk_only), median(with_ops), median(marginal)
    low, high = spread(sdk_only)
    heavy = sorted({name.split(".")[0] for name in added} - {"airflow_provider_crm"})
    short = ", ".join(name.rsplit(".", 1)[1] for name in modules)
    row = Row(
        benchmark="import",
        measured=f"`from airflow.sdk import BaseOperator`, then the operator modules ({short}); fresh interpreters, "
        f"median of {repeats}",
        ours=f"+{extra:.1f} ms (operator modules, marginal)",
        baseline=f"{base:.0f} ms (sdk alone)",
        ratio=fmt_ratio((base + extra) / base),
        target=f"≤ {TARGET_MS:.0f} ms added",
        passed=extra <= TARGET_MS,
    )
    notes = [
        f"end to end, sdk + operators took {ours:.0f} ms against {base:.0f} ms for the sdk alone "
        f"({ours - base:+.0f} ms, medians of separate interpreters); the sdk-only import by itself spreads over "
        f"{low:.0f} to {high:.0f} ms (quartiles), so that difference is mostly noise and the marginal time "
        "measured in-process is the figure judged.",
        f"the operator imports loaded {len(added)} new modules; top-level packages other than ours: "
        f"{', '.join(heavy) or 'none'}.",
    ]
    if BULK_MODULE not in modules:
        notes.append(f"`{BULK_MODULE}` does not exist yet, so it was not imported.")
    return BenchResult(NAME, [row], notes, {"marginal_ms": marginal, "sdk_ms": sdk_only, "with_ops_ms": with_ops})


if __name__ == "__main__":
    sys.exit(standalone(NAME, run, __doc__ or NAME))
