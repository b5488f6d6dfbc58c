"""Incremental sync: skip a record whose request the vendor already confirmed, send the rest.

The store (:mod:`~airflow_provider_crm.bulk.sync_file`) maps each record key to a fingerprint of the
request last sent for it *and confirmed* (a ledger action ``created``, ``updated`` or ``unchanged``
with status ``ok``), and to the remote id the vendor gave. A run compares each record's fingerprint
with the store: equal, the record is not sent and its ledger line says ``unchanged`` / ``skipped``;
different or unknown, it is sent. The store changes only by confirmed outcomes; a record that was
sent and not confirmed (refused, failed, outcome unknown) loses its entry, so the next run sends it
whatever it holds then.

Rules that keep a skip safe:

- The fingerprint is a 64-bit BLAKE2b of the key and the validated request (the body the writer
  builds, after CSV typing), so any change that reaches the vendor changes it.
- A key is compared with the store only until a record of it is sent in this run: a later record of
  the same key in the same input is sent too (it may undo the earlier one), never skipped. Keys the
  vendor takes for one (HubSpot ids differing in case) share one entry.
- Records without a key of their own (the ledger names them ``#<position>``) are always sent.
- A dry run reads the store (it reports what would be skipped) and never saves it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_crm.bulk import sync_file
from airflow_provider_crm.bulk.ledger import OK, WRITTEN, Outcome
from airflow_provider_crm.bulk.sync_file import StoreArrays, StoreHeader, SyncStoreError
from airflow_provider_crm.bulk.sync_settings import ON_STATE_ERROR

FORGOTTEN = 0
"""The fingerprint logged for a key sent and not confirmed: the merged store drops the key."""


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def fingerprint(key: str, prepared: Any) -> int:
    """A non-zero 64-bit digest of ``key`` and the validated request ``prepared``."""
    text = json.dumps([key, prepared], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return value or 1


def _plain(value: Any) -> Any:
    """JSON for what a writer's request holds besides JSON types: dataclasses, models, sets, times."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


class SyncState:
    """One run's view of the store: what to skip, and the confirmations to save.

    :param path: ``state_path``: local or an object-storage URL.
    :param scope: What writes through this store (operator and target); another scope's store is refused.
    :param full_sync_every: Send everything when the last full sync is older than this (None: never).
    :param on_state_error: ``fail`` (an unreadable store fails the task) or ``full_sync`` (send
        everything and write a new store).
    :param skip: Whether to skip at all; False sends every record and keeps the store up to date.
    :param now: The run's start (a fake clock in tests).
    """

    def __init__(
        self,
        path: str,
        scope: str,
        *,
        full_sync_every: timedelta | None = None,
        on_state_error: str = "fail",
        skip: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if on_state_error not in ON_STATE_ERROR:
            raise ValueError(f"on_state_error must be one of {', '.join(ON_STATE_ERROR)}, not {on_state_error!r}")
        self.path = path
        self.started = now()
        self.header = StoreHeader(scope=scope)
        self.base = StoreArrays()
        self.loaded_generation: int | None = None
        self.reason = self._load(scope, on_state_error)
        self.full = bool(self.reason)
        if not skip:
            self.reason, self.full = "skip_unchanged is off", True
        elif not self.full and self._full_sync_due(full_sync_every):
            self.reason, self.full = f"the last full sync was {self.header.last_full_sync}", True
        self.touched = bytearray(len(self.base))
        self.log_keys: array[int] = array("Q")
        self.log_fingerprints: array[int] = array("Q")
        self.log_id_ends: array[int] = array("I")
        self.log_ids = bytearray()
        self.pending: dict[int, tuple[int, int]] = {}

    def _load(self, scope: str, on_state_error: str) -> str:
        """Read the store; the reason this run sends everything, or ``""`` when it need not.

        Another task's store is refused whatever ``on_state_error`` says: replacing it would make that
        task send everything next time, and two tasks sharing a path would keep doing so.
        """
        try:
            found = sync_file.load(self.path)
        except (SyncStoreError, OSError) as exc:
            if on_state_error != "full_sync":
                message = f"{exc}; pass on_state_error='full_sync' to send every record and start a new store"
                raise SyncStoreError(message) from exc
            self.loaded_generation = sync_file.current_generation(self.path)
            return f"the store could not be read ({exc})"
        if found is None:
            return "there is no store yet"
        header, arrays = found
        if header.scope != scope:
            raise SyncStoreError(
                f"state_path {self.path} belongs to {header.scope!r}, not {scope!r}: give each task its own state_path"
            )
        self.header, self.base, self.loaded_generation = header, arrays, header.generation
        return ""

    def _full_sync_due(self, every: timedelta | None) -> bool:
        if every is None:
            return False
        last = self.header.last_full_sync
        return last is None or datetime.fromisoformat(last) + every <= self.started

    def _find(self, hashed: int) -> int:
        position = bisect_left(self.base.keys, hashed)
        return position if position < len(self.base) and self.base.keys[position] == hashed else -1

    @staticmethod
    def eligible(index: int, key: str) -> bool:
        """Whether a record has a key of its own (the ledger's ``#<position>`` is not one)."""
        return key != f"#{index}"

    def _compare(self, key: str, prepared: Any, same_as: str | None) -> tuple[int, int, int, bool]:
        """(key hash, fingerprint, store position or -1, whether the store holds this request unsent so far)."""
        hashed = key_hash(key if same_as is None else same_as)
        mark = fingerprint(key, prepared)
        position = self._find(hashed)
        fresh = not self.full and position >= 0 and not self.touched[position]
        return hashed, mark, position, fresh and self.base.fingerprints[position] == mark

    def matches(self, index: int, key: str, prepared: Any) -> bool:
        """Whether the store holds this request for ``key`` as confirmed (and this run sent none yet); notes nothing."""
        return self.eligible(index, key) and self._compare(key, prepared, None)[3]

    def unchanged(self, index: int, key: str, prepared: Any, same_as: str | None = None) -> tuple[bool, str | None]:
        """Whether the record can be skipped (else it is noted as sent), and the remote id the store holds.

        :param same_as: What names the remote record when the vendor compares keys loosely (HubSpot ids
            without case or padding, see ``Item.same_as``): records that share it share one entry, so
            the later of two spellings in one input is sent after the earlier, never skipped.
        """
        if not self.eligible(index, key):
            return False, None
        hashed, mark, position, same = self._compare(key, prepared, same_as)
        remote_id = self.base.remote_id(position) if position >= 0 else None
        if same:
            return True, remote_id
        if position >= 0:
            self.touched[position] = 1
        self.pending[index] = (hashed, mark)
        return False, remote_id

    def settled(self, outcome: Outcome) -> None:
        """Log a sent record's outcome: its fingerprint when confirmed, else forget the key."""
        sent = self.pending.pop(outcome.index, None)
        if sent is None:
            return
        hashed, mark = sent
        confirmed = outcome.action in WRITTEN and outcome.status == OK
        self.log_keys.append(hashed)
        self.log_fingerprints.append(mark if confirmed else FORGOTTEN)
        if confirmed and outcome.remote_id:
            self.log_ids.extend(outcome.remote_id.encode())
        self.log_id_ends.append(len(self.log_ids))

    def remote_id(self, key: str) -> str | None:
        """The remote id the store holds for ``key`` (None when it holds none)."""
        position = self._find(key_hash(key))
        return self.base.remote_id(position) if position >= 0 else None

    def save(self, *, completed: bool) -> None:
        """Write the store: the loaded one with this run's confirmations; a completed full run dates it.

        :param completed: The run went over every record (it did not stop on an error).
        """
        header = dataclasses.replace(self.header, generation=self.header.generation + 1)
        header.saved_at = self.started.isoformat()
        if completed and self.full:
            header.last_full_sync = self.started.isoformat()
        sync_file.save(self.path, header, self._merged(), loaded_generation=self.loaded_generation)

    def _merged(self) -> StoreArrays:
        """The base and the log in one sorted store; the log's last word on a key wins."""
        if self._updated_in_place():
            return self.base
        merged = StoreArrays(ids=bytearray())
        position = 0
        for hashed, entry in self._last_words():
            found = bisect_left(self.base.keys, hashed, lo=position)
            _copy(merged, self.base, position, found)
            position = found + 1 if found < len(self.base) and self.base.keys[found] == hashed else found
            if self.log_fingerprints[entry] != FORGOTTEN:
                start = self.log_id_ends[entry - 1] if entry else 0
                merged.keys.append(hashed)
                merged.fingerprints.append(self.log_fingerprints[entry])
                merged.ids.extend(self.log_ids[start : self.log_id_ends[entry]])  # type: ignore[union-attr]
                merged.id_ends.append(len(merged.ids))
        _copy(merged, self.base, position, len(self.base))
        return merged

    def _last_words(self) -> Iterator[tuple[int, int]]:
        """(key hash, log position of the key's last entry), in key order.

        A counting sort by the hash's top bits into buckets of about 256 entries, then each bucket
        sorted on its own: a first night's million entries never become a list of a million ints
        (40 MB more at the peak, measured). The hashes are uniform, so the buckets are even.
        """
        log = self.log_keys
        bits = min(16, max(0, len(log).bit_length() - 8))
        shift = 64 - bits
        starts = array("I", bytes(4 * ((1 << bits) + 1)))
        for hashed in log:
            starts[(hashed >> shift) + 1] += 1
        for bucket in range(1 << bits):
            starts[bucket + 1] += starts[bucket]
        order = array("I", bytes(4 * len(log)))
        fill = array("I", starts)
        for entry, hashed in enumerate(log):
            bucket = hashed >> shift
            order[fill[bucket]] = entry
            fill[bucket] += 1
        for bucket in range(1 << bits):
            # A bucket holds its log positions in ascending order and the sort is stable: a key's entries
            # stay in log order, so its last word comes last.
            entries = sorted(order[starts[bucket] : starts[bucket + 1]], key=log.__getitem__)
            for rank, entry in enumerate(entries):
                if rank + 1 == len(entries) or log[entries[rank + 1]] != log[entry]:
                    yield log[entry], entry

    def _updated_in_place(self) -> bool:
        """Apply the log to the base's fingerprints when it only changes keys the base holds, with the same
        remote ids (a nightly run's usual log): no second copy of the store. False, untouched, otherwise."""
        positions = array("I")
        for entry, hashed in enumerate(self.log_keys):
            position = self._find(hashed)
            start = self.log_id_ends[entry - 1] if entry else 0
            ident = bytes(self.log_ids[start : self.log_id_ends[entry]]).decode() or None
            if position < 0 or self.log_fingerprints[entry] == FORGOTTEN or ident != self.base.remote_id(position):
                return False
            positions.append(position)
        for entry, position in enumerate(positions):
            self.base.fingerprints[position] = self.log_fingerprints[entry]
        return True


def _copy(merged: StoreArrays, base: StoreArrays, start: int, stop: int) -> None:
    """Append ``base`` entries ``start:stop`` to ``merged`` (slices, no Python loop but the id offsets)."""
    if stop <= start:
        return
    merged.keys.extend(base.keys[start:stop])
    merged.fingerprints.extend(base.fingerprints[start:stop])
    first = base.id_ends[start - 1] if start else 0
    shift = len(merged.ids) - first
    merged.ids.extend(base.ids[first : base.id_ends[stop - 1]])  # type: ignore[union-attr]
    merged.id_ends.extend(array("I", [end + shift for end in base.id_ends[start:stop]]))
