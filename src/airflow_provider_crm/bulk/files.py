"""Open record files anywhere Airflow's ObjectStoragePath reaches (local, s3://, gs://, ...)."""

from __future__ import annotations

import os
from typing import IO, Any


def open_path(path: str | os.PathLike[str], mode: str) -> IO[Any]:
    """Open a local path or object-storage URL in text mode (``r``, ``w`` or ``a``)."""
    from airflow_provider_crm._compat import ObjectStoragePath

    target = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))
    if mode in ("w", "a"):
        parent = target.parent
        if target.protocol in ("", "file", "local"):
            parent.mkdir(parents=True, exist_ok=True)
    return target.open(mode, encoding="utf-8", newline="")


def suffix_of(path: str | os.PathLike[str]) -> str:
    name = str(path).rsplit("/", 1)[-1].lower()
    for suffix in (".jsonl", ".ndjson", ".csv", ".json"):
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return suffix
    return ""
