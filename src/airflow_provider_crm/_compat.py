"""The few Airflow APIs that moved or changed between 3.x releases.

Import these names from here rather than from Airflow, so the provider works on every release from
3.0 on (CI runs the suite on the newest release and on the oldest one the package claims).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import ObjectStoragePath

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0: the hook base class is not in the Task SDK yet
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]

try:
    from airflow.sdk.log import mask_secret as _airflow_mask_secret
    from airflow.sdk.log import redact
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret as _airflow_mask_secret  # type: ignore[no-redef]
    from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]


def _backport_iterable_object_storage_files() -> None:
    """Make files opened through ``ObjectStoragePath`` iterable line by line on Airflow 3.0.

    3.0 wraps them in a lineage-tracking proxy without ``__iter__``, so ``for line in handle`` and
    ``csv.reader(handle)`` fall back to ``handle[0]`` and raise ``TypeError``; later releases define it.
    """
    from airflow.sdk.io import path as storage_path

    wrapper = getattr(storage_path, "_TrackingFileWrapper", None)
    if wrapper is not None and "__iter__" not in vars(wrapper):
        wrapper.__iter__ = lambda self: iter(self._obj)


_backport_iterable_object_storage_files()

__all__ = ["BaseHook", "ObjectStoragePath", "mask_secret", "redact"]


def mask_secret(value: Any) -> None:
    """Register a runtime secret with Airflow's masker so it shows as ``***`` in logs."""
    if value is None or value == "":
        return
    _airflow_mask_secret(value)
