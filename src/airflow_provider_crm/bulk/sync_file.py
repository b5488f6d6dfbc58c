"""The incremental-sync store on disk: one binary file, replaced whole, never edited in place.

Layout (little-endian)::

    b"CRMSYNC1\\n"
    one JSON line: {"version", "scope", "generation", "count", "ids_bytes", "last_full_sync", "saved_at"}
    count x uint64   key hashes, ascending
    count x uint64   fingerprints (the same order)
    count x uint32   end offset of each remote id in the blob below
    ids_bytes bytes  the remote ids, UTF-8, back to back
    16 bytes         BLAKE2b digest of everything above

1,000,000 keys with 24-character ids take about 44 MB on disk and as much in memory (no Python
object per key). A save writes a temporary sibling and then replaces the file (``os.replace``
locally; a rename on object storage, where a single object is replaced whole), so a reader sees the
previous file or the new one. The digest catches a file cut short or changed by hand: reading it
fails with :class:`SyncStoreError` instead of skipping records on bad data.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import uuid
from array import array
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_crm.errors import CrmError

MAGIC = b"CRMSYNC1\n"
VERSION = 1
DIGEST_BYTES = 16
UNREADABLE = -1
"""The generation :func:`current_generation` gives a file that cannot be read."""


class SyncStoreError(CrmError):
    """The store at ``state_path`` could not be read or saved."""


class ConcurrentSyncError(SyncStoreError):
    """Another run saved the store after this run loaded it: saving would lose that run's confirmations."""


@dataclass
class StoreHeader:
    """What the file says about itself."""

    scope: str
    generation: int = 0
    count: int = 0
    ids_bytes: int = 0
    last_full_sync: str | None = None
    """ISO time at which the last run that sent every record started; None: never."""
    saved_at: str | None = None

    def line(self) -> bytes:
        fields = {"version": VERSION, **self.__dict__}
        return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode() + b"\n"


@dataclass
class StoreArrays:
    """The store's columns: sorted key hashes, their fingerprints and remote ids."""

    keys: array[int] = field(default_factory=lambda: array("Q"))
    fingerprints: array[int] = field(default_factory=lambda: array("Q"))
    id_ends: array[int] = field(default_factory=lambda: array("I"))
    ids: bytes | bytearray = b""

    def __len__(self) -> int:
        return len(self.keys)

    def remote_id(self, position: int) -> str | None:
        start = self.id_ends[position - 1] if position else 0
        end = self.id_ends[position]
        return self.ids[start:end].decode() if end > start else None


def _target(path: str) -> Any:
    from airflow_provider_crm._compat import ObjectStoragePath
    from airflow_provider_crm.bulk.files import _local_if_file_url

    return ObjectStoragePath(_local_if_file_url(path))


def _is_local(target: Any) -> bool:
    return target.protocol in ("", "file", "local")


def read_header(path: str) -> StoreHeader | None:
    """The header of the store at ``path``; None when there is no file."""
    target = _target(path)
    try:
        with target.open("rb") as handle:
            return _header(handle.read(len(MAGIC)), handle.readline(), path)
    except FileNotFoundError:
        return None


def current_generation(path: str) -> int | None:
    """The generation of the store at ``path``: None when there is none, -1 when it cannot be read."""
    try:
        header = read_header(path)
    except (SyncStoreError, OSError):
        return UNREADABLE
    return None if header is None else header.generation


def _header(head: bytes, line: bytes, path: str) -> StoreHeader:
    if head != MAGIC:
        raise SyncStoreError(f"state_path {path}: not an incremental-sync store (wrong first bytes)")
    try:
        fields = json.loads(line)
        if fields.pop("version") != VERSION:
            raise ValueError("unknown version")
        return StoreHeader(**fields)
    except (ValueError, TypeError, KeyError) as exc:
        raise SyncStoreError(f"state_path {path}: unreadable header ({exc})") from exc


def load(path: str) -> tuple[StoreHeader, StoreArrays] | None:
    """The store at ``path``, checked against its digest; None when there is no file.

    Columns are read straight into their arrays (no intermediate copy of the file in memory).
    """
    target = _target(path)
    try:
        handle = open(str(target), "rb") if _is_local(target) else target.open("rb")  # noqa: SIM115
    except FileNotFoundError:
        return None
    with handle:
        digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
        head = handle.read(len(MAGIC))
        line = handle.readline()
        digest.update(head + line)
        header = _header(head, line, path)
        arrays = StoreArrays()
        for column, count in ((arrays.keys, header.count), (arrays.fingerprints, header.count)):
            _read_column(handle, column, count, path)
            digest.update(column)
        _read_column(handle, arrays.id_ends, header.count, path)
        digest.update(arrays.id_ends)
        arrays.ids = _exactly(handle, header.ids_bytes, path)
        digest.update(arrays.ids)
        if handle.read(DIGEST_BYTES + 1) != digest.digest():
            raise SyncStoreError(f"state_path {path}: the file is cut short or was changed (digest mismatch)")
    if sys.byteorder == "big":
        for column in (arrays.keys, arrays.fingerprints, arrays.id_ends):
            column.byteswap()
    return header, arrays


def _read_column(handle: IO[bytes], column: array[int], count: int, path: str) -> None:
    """Append ``count`` items read from ``handle`` to ``column`` (as stored: little-endian)."""
    try:
        column.fromfile(handle, count)
    except EOFError as exc:
        raise SyncStoreError(f"state_path {path}: the file is cut short ({exc})") from exc
    except (TypeError, AttributeError, OSError):  # not a real file (object storage): read, then copy
        column.frombytes(_exactly(handle, count * column.itemsize, path))


def save(path: str, header: StoreHeader, arrays: StoreArrays, *, loaded_generation: int | None) -> None:
    """Replace the store at ``path``, refusing when another run saved it since this one loaded it.

    :param loaded_generation: What :func:`current_generation` gave when this run read the store.
    """
    found = current_generation(path)
    if found != loaded_generation:
        raise ConcurrentSyncError(
            f"state_path {path}: another run saved the store after this run read it (generation {found}, "
            f"read {loaded_generation}); not overwriting it. Run one sync per store at a time "
            "(max_active_runs=1); the records this run confirmed are sent again next run"
        )
    header.count = len(arrays)
    header.ids_bytes = len(arrays.ids)
    target = _target(path)
    if _is_local(target):
        _save_local(str(target), header, arrays)
        return
    temporary = _target(f"{path}.tmp-{uuid.uuid4().hex}")
    with temporary.open("wb") as handle:
        _write(handle, header, arrays)
    temporary.rename(target)


def _save_local(path: str, header: StoreHeader, arrays: StoreArrays) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".sync-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            _write(stream, header, arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _write(handle: IO[bytes], header: StoreHeader, arrays: StoreArrays) -> None:
    """Write the store; the columns go out as they are held (no copy), swapped only on big-endian machines."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for part in (MAGIC, header.line()):
        digest.update(part)
        handle.write(part)
    for column in (arrays.keys, arrays.fingerprints, arrays.id_ends):
        if sys.byteorder == "big":
            column = array(column.typecode, column)
            column.byteswap()
        digest.update(column)
        handle.write(column)
    digest.update(arrays.ids)
    handle.write(arrays.ids)
    handle.write(digest.digest())


def _exactly(handle: IO[bytes], size: int, path: str) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise SyncStoreError(f"state_path {path}: the file is cut short ({len(data)} of {size} bytes)")
    return data
