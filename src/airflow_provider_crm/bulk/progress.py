"""Durable progress for resuming a retried task, kept in Airflow 3.3's task state store.

Before 3.3 (or outside a task) there is no store: a retry then re-sends every record and relies on
the idempotent paths — Kustomer's external-id lookup (an existing record comes back ``unchanged``),
Kaiten's and Kustomer's PUT, MicroBase's value-setting update, HubSpot's PATCH and batch
update/upsert — so nothing is duplicated, only re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

STATE_KEY = "airflow_provider_crm.bulk.progress"
RETENTION = timedelta(days=7)


class TaskStateProgress:
    """Stores ``{"done_through": n, "counts": {...}}`` under one key of the task's state store."""

    def __init__(self, store: Any) -> None:
        self._store = store

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> TaskStateProgress | None:
        store = (context or {}).get("task_state_store")
        if store is None:
            log.info("no task state store (Airflow < 3.3): a retry re-sends records through idempotent writes")
            return None
        return cls(store)

    def load(self) -> tuple[int, dict[str, int]]:
        value = self._store.get(STATE_KEY)
        if not isinstance(value, dict):
            return 0, {}
        done = int(value.get("done_through") or 0)
        counts = {str(k): int(v) for k, v in (value.get("counts") or {}).items()}
        if done:
            log.info("resuming after %d records already written by an earlier try", done)
        return done, counts

    def save(self, done_through: int, counts: dict[str, int]) -> None:
        self._store.set(STATE_KEY, {"done_through": done_through, "counts": counts}, retention=RETENTION)
