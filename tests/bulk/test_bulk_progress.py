"""A bulk run long enough to log several progress lines, inside real Airflow (``dag.test()``)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_crm.sandbox import Sandbox
from tests.helpers import task_states

RECORDS = 80
RATE = 40.0
"""Requests a second: the run lasts at least RECORDS / RATE = 2 s, several progress intervals."""
INTERVAL = 0.25

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    KustomerBulkCreateKObjectsOperator(
        task_id="sync", klass_name="orders", records=RECORDS, mode="per_record", rate_limit=RATE,
        progress_interval=INTERVAL,
    )
"""
PROGRESS = re.compile(r"progress: (\d+) of 80 records \([\d.]+%\), [\d.,]+ records/s, (\d+) 429s waited out")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def test_a_long_run_logs_progress_at_the_interval_and_a_summary(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    records = [{"external_id": f"o-{n}", "title": f"Order {n}"} for n in range(RECORDS)]
    source = DAG.replace("RECORDS", repr(records)).replace("RATE", repr(RATE)).replace("INTERVAL", repr(INTERVAL))

    run = run_dag(source)

    assert task_states(run) == {"sync": "success"}
    assert sandbox.state("kustomer").count() == RECORDS
    log_lines = "".join(capfd.readouterr()).splitlines()
    progress = [(line, PROGRESS.search(line)) for line in log_lines if PROGRESS.search(line)]
    assert len(progress) >= 3, "several lines over a run of at least 2 s"
    done = [int(found.group(1)) for _, found in progress]
    assert done == sorted(done) and 0 < done[-1] <= RECORDS, "records done only grow"
    stamps = [dt.datetime.fromisoformat(STAMP.match(line).group(1)) for line, _ in progress]  # type: ignore[union-attr]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(stamps)]
    assert min(gaps) >= INTERVAL * 0.8, "one line per interval, not more"
    [summary] = [line for line in log_lines if "done: 80 records in" in line]
    assert "created 80" in summary and "0 429s waited out" in summary
