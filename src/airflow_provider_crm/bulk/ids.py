"""The key → remote id map of a bulk run of any size, read back from its ledger.

The XCom summary carries ids only for runs of up to 100 records. For more, a downstream task reads
the ledger (:func:`read_ids`), or the bulk operator pushes the map itself (``push_ids=True``, up to
:data:`MAX_PUSHED_IDS` ids). Either way the ledger must be where the downstream task's worker can
read it: on a deployment with more than one worker, object storage (``s3://``, ``gs://``, ...), not
a worker's local disk.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from airflow_provider_crm.bulk.files import open_path
from airflow_provider_crm.bulk.ledger import OK, WRITTEN
from airflow_provider_crm.errors import CrmError

log = logging.getLogger(__name__)

MAX_PUSHED_IDS = 50_000
"""Ids ``push_ids=True`` puts in one XCom (about 3 MB of JSON with 24-character ids); more fails the task."""


class TooManyIdsError(CrmError):
    """The run wrote more records than ``push_ids`` pushes to XCom; read the ledger with :func:`read_ids`."""

    def __init__(self, message: str, *, limit: int) -> None:
        self.limit = limit
        super().__init__(message)


def iter_ledger(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The ledger's lines one at a time; a line that is not a JSON object (cut off by a killed worker) is skipped."""
    skipped = 0
    with open_path(path, "r") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if isinstance(item, dict):
                yield item
            else:
                skipped += 1
    if skipped:
        log.warning("ledger %s: skipped %d line(s) that are not JSON objects", path, skipped)


def read_ids(*ledger_paths: str | os.PathLike[str], limit: int | None = None) -> dict[str, str]:
    """Key → remote id of every record written (``created``, ``updated``, ``unchanged``) in the ledgers.

    Give the ledgers of every try, oldest first (the summary's ``ledger_paths``); a key written more
    than once keeps its last id. Lines are streamed: memory holds the map, not the file. Paths are
    local or any ``ObjectStoragePath`` URL. With ``limit``, raise :class:`TooManyIdsError` as soon
    as the map would hold more keys than that.
    """
    ids: dict[str, str] = {}
    for path in ledger_paths:
        for line in iter_ledger(path):
            remote_id, key = line.get("remote_id"), line.get("key")
            if line.get("action") not in WRITTEN or line.get("status") != OK or remote_id is None or key is None:
                continue
            ids[str(key)] = str(remote_id)
            if limit is not None and len(ids) > limit:
                raise TooManyIdsError(
                    f"the run wrote more than {limit:,} records, more ids than push_ids puts in an XCom; "
                    "read them in the downstream task with airflow_provider_crm.bulk.ids.read_ids(*ledger_paths) "
                    f"(the summary's ledger_paths: {', '.join(str(p) for p in ledger_paths)})",
                    limit=limit,
                )
    return ids
