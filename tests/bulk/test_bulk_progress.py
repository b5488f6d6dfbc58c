"""A bulk run long enough to log several progress lines, inside real Airflow (``dag.test()``)."""

from __future__ import annotations

import datetime as dt
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
STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)[.,](\d{3})")
"""A log line's time: ``2026-11-30T23:26:43.894…Z`` (Airflow 3.1+) or ``[2026-11-30 23:26:43,894]`` (3.0)."""


def logged_at(line: str) -> dt.datetime:
    found = STAMP.search(line)
    assert found is not None, f"no time in {line!r}"
    day, clock, millis = found.groups()
    return dt.datetime.fromisoformat(f"{day}T{clock}.{millis}")


def test_a_long_run_logs_progress_at_the_interval_and_a_summary(
    run_dag: Any, sandbox: Sandbox, kustomer_conn: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    records = [{"external_id": f"o-{n}", "title": f"Order {n}"} for n in range(RECORDS)]
    source = DAG.replace("RECORDS", repr(records)).replace("RATE", repr(RATE)).replace("INTERVAL", repr(INTERVAL))

    run = run_dag(source)

    assert task_states(run) == {"sync": "success"}
    assert sandbox.state("kustomer").count() == RECORDS
    log_lines = "".join(capfd.readouterr()).splitlines()
    # Airflow 3.0 prints each task log line twice, in two formats: count each message once, at its first time.
    first_logged: dict[str, dt.datetime] = {}
    for line in log_lines:
        if found := PROGRESS.search(line):
            first_logged.setdefault(found.group(0), logged_at(line))
    assert len(first_logged) >= 3, "several lines over a run of at least 2 s"
    by_time = sorted(first_logged.items(), key=lambda item: item[1])
    done = [int(PROGRESS.search(message).group(1)) for message, _ in by_time]  # type: ignore[union-attr]
    assert done == sorted(done) and 0 < done[-1] <= RECORDS, "records done only grow"
    gaps = [(later - earlier).total_seconds() for (_, earlier), (_, later) in itertools.pairwise(by_time)]
    assert min(gaps) >= INTERVAL * 0.8, "one line per interval, not more"
    [summary] = {line[line.index("done: ") :] for line in log_lines if "done: 80 records in" in line}
    assert "created 80" in summary and "0 429s waited out" in summary
