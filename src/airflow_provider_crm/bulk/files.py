"""Open record files anywhere Airflow's ObjectStoragePath reaches (local, s3://, gs://, ...)."""

from __future__ import annotations

import os
from typing import IO, Any
from urllib.parse import unquote, urlsplit


def open_path(path: str | os.PathLike[str], mode: str) -> IO[Any]:
    """Open a local path or object-storage URL in text mode (``r``, ``w`` or ``a``).

    A local path is opened with :func:`open` itself: ``ObjectStoragePath`` wraps every call on its
    files (for hook-level lineage, which the operators' own OpenLineage facets replace), and a
    ledger line per record made that wrapper most of a large run's cost of writing its ledger.
    """
    from airflow_provider_crm._compat import ObjectStoragePath

    target: ObjectStoragePath
    if isinstance(path, ObjectStoragePath):
        target = path
    else:
        local = _local_if_file_url(os.fspath(path))
        if "://" not in local:
            if mode in ("w", "a"):
                os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
            return open(local, mode, encoding="utf-8", newline="")
        target = ObjectStoragePath(local)
    if mode in ("w", "a"):
        parent = target.parent
        if target.protocol in ("", "file", "local"):
            parent.mkdir(parents=True, exist_ok=True)
    return target.open(mode, encoding="utf-8", newline="")


def _local_if_file_url(path: str) -> str:
    """``file:///x`` as the local path ``/x``: older ObjectStoragePath releases refuse the ``file`` protocol."""
    if not path.startswith("file://"):
        return path
    parts = urlsplit(path)
    return unquote(parts.path) if parts.netloc in ("", "localhost") else path


def suffix_of(path: str | os.PathLike[str]) -> str:
    name = str(path).rsplit("/", 1)[-1].lower()
    for suffix in (".jsonl", ".ndjson", ".csv", ".json"):
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return suffix
    return ""
