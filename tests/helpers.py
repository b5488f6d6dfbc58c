"""Small helpers for reading finished DAG runs."""

from __future__ import annotations


def xcom_values(run: object) -> dict[str, object]:
    """Each task's XCom return value in a finished DAG run."""
    return {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def task_states(run: object) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]
