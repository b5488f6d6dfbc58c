"""Small helpers for reading finished DAG runs and reaching the sandbox's emulators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file (a ledger, a dead letter); none when it was never written."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def xcom_values(run: object) -> dict[str, object]:
    """Each task's XCom return value in a finished DAG run."""
    return {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def task_states(run: object) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def hubspot_app(sandbox: Sandbox) -> HubSpotApp:
    """The sandbox's HubSpot emulator, typed for its seeding and configuration methods."""
    app = sandbox.app("hubspot")
    assert isinstance(app, HubSpotApp)
    return app


def hubspot_app_answering(sandbox: Sandbox, batch_errors: str) -> HubSpotApp:
    """The HubSpot emulator naming failed batch inputs in the ``batch_errors`` style, with the unique
    property ``kustomer_kobject_id`` for records to clash on."""
    app = hubspot_app(sandbox)
    app.configure({"batch_errors": batch_errors})
    app.add_property("kustomer_kobject_id", "string", unique=True)
    return app
