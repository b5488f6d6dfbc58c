"""Shared setup of the operator tests: the text of a DAG file for the ``run_dag`` fixture to run."""

from __future__ import annotations

import textwrap

DAG_HEADER = """\
import pendulum
from airflow.sdk import DAG, task
{imports}

with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
"""


def dag_source(body: str, *imports: str) -> str:
    """A DAG file that imports ``imports`` and holds ``body`` (its tasks) in the ``with DAG`` block."""
    return DAG_HEADER.format(imports="\n".join(imports)) + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
