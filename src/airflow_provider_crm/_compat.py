"""The few Airflow APIs whose import path moved between 3.x releases."""

from __future__ import annotations

from typing import Any

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0: the hook base class is not in the Task SDK yet
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

__all__ = ["BaseHook", "mask_secret"]


def mask_secret(value: Any) -> None:
    """Register a runtime secret with Airflow's masker so it shows as ``***`` in logs."""
    if value is None or value == "":
        return
    try:
        from airflow.sdk.log import mask_secret as mask
    except ImportError:  # Airflow 3.0/3.1
        from airflow.sdk.execution_time.secrets_masker import mask_secret as mask  # type: ignore[no-redef]
    mask(value)
