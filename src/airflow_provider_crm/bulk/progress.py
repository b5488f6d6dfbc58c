"""Durable progress for resuming a retried task, kept in Airflow 3.3's task state store.

What a try leaves for the next (:class:`Resume`): every input position before ``done_through``
is settled, except the ``owed`` ones (ranges of positions), which a retry sends again in input
order together with every position from ``done_through`` on. Settled means written or refused for
good; owed means refused for a reason that can pass (:func:`~airflow_provider_crm.bulk.policy.retry_later`),
or written after an owed record of its key (so that resending the earlier one alone can't undo it).

The value stays small whatever the input: owed positions are kept as ranges, at most
:data:`MAX_OWED_RANGES` of them (under Airflow's default ``max_value_storage_bytes`` of 64 KiB even
with ten-digit positions). Past that, ``done_through`` stops at the first owed record that found no
room, and a retry re-sends everything from there: safe, because every bulk write is idempotent or
reconciled, only slower.

Before 3.3 (or outside a task) there is no store: a retry then re-sends every record and relies on
the idempotent paths — Kustomer's external-id lookup (an existing record comes back ``unchanged``),
Kaiten's and Kustomer's PUT, MicroBase's value-setting update, HubSpot's PATCH and batch
update/upsert — so nothing is duplicated, only re-sent.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow_provider_crm.bulk.ledger import REJECTED, Outcome

log = logging.getLogger(__name__)

STATE_KEY = "airflow_provider_crm.bulk.progress"
RETENTION = timedelta(days=7)
MAX_OWED_RANGES = 2_000
"""Ranges of owed positions one state value holds (about 48 KiB at worst)."""
MAX_OWED_KEYS = 50_000
"""Keys of owed records remembered in memory during a try, to owe their later records too."""
MAX_LEDGERS = 20
"""Ledger paths of earlier tries remembered (one per try when the path has ``{{ ti.try_number }}``)."""
MESSAGE_CHARS = 500


@dataclass
class Resume:
    """How far earlier tries got; what :class:`TaskStateProgress` stores between tries."""

    done_through: int = 0
    owed: list[tuple[int, int]] = field(default_factory=list)
    """Inclusive, sorted, disjoint ranges of positions before ``done_through`` to send again."""
    counts: dict[str, int] = field(default_factory=dict)
    """Actions of the settled records (before ``done_through``, not owed)."""
    first_rejection: dict[str, Any] | None = None
    """The first rejection of the earlier tries (``index``, ``key``, ``error_code``, ``error_message``, ``status``)."""
    ledgers: list[str] = field(default_factory=list)

    @property
    def settled(self) -> int:
        return sum(self.counts.values())

    @property
    def owed_records(self) -> int:
        return sum(end - start + 1 for start, end in self.owed)

    @property
    def started(self) -> bool:
        return self.done_through > 0 or bool(self.owed)

    def to_state(self) -> dict[str, Any]:
        return {
            "done_through": self.done_through,
            "owed": [[start, end] for start, end in self.owed],
            "counts": self.counts,
            "first_rejection": self.first_rejection,
            "ledgers": self.ledgers[-MAX_LEDGERS:],
        }

    @classmethod
    def from_state(cls, value: Any) -> Resume:
        if not isinstance(value, Mapping):
            return cls()
        first = value.get("first_rejection")
        return cls(
            done_through=int(value.get("done_through") or 0),
            owed=[(int(start), int(end)) for start, end in value.get("owed") or []],
            counts={str(k): int(v) for k, v in (value.get("counts") or {}).items()},
            first_rejection=dict(first) if isinstance(first, Mapping) else None,
            ledgers=[str(path) for path in value.get("ledgers") or []],
        )


class TaskStateProgress:
    """Keeps a :class:`Resume` under one key of the task's state store."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._loaded: Resume | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> TaskStateProgress | None:
        store = (context or {}).get("task_state_store")
        if store is None:
            log.info("no task state store (Airflow < 3.3): a retry re-sends records through idempotent writes")
            return None
        return cls(store)

    def load(self) -> Resume:
        if self._loaded is None:
            self._loaded = Resume.from_state(self._store.get(STATE_KEY))
            resume = self._loaded
            if resume.started:
                log.info(
                    "resuming: %d record(s) settled by an earlier try; sending again the %d it could not write "
                    "and every record from position %d",
                    resume.settled,
                    resume.owed_records,
                    resume.done_through,
                )
        return self._loaded

    def save(self, resume: Resume) -> None:
        self._store.set(STATE_KEY, resume.to_state(), retention=RETENTION)

    def clear(self) -> None:
        """Forget the progress once the task succeeded: re-running it later sends everything again."""
        self._store.delete(STATE_KEY)


class Tracker:
    """Settles input positions in order from completions that arrive out of order.

    Positions "in play" this try are the owed ranges carried from earlier tries plus every position
    from their ``done_through`` on. :attr:`mark` is the first position in play not yet settled;
    :meth:`snapshot` is what a retry resumes from. Memory: one entry per completed position past
    the mark (bounded by the runner's read-ahead), plus at most :data:`MAX_OWED_KEYS` keys.
    """

    def __init__(
        self, resume: Resume, *, max_owed_ranges: int = MAX_OWED_RANGES, max_owed_keys: int = MAX_OWED_KEYS
    ) -> None:
        self._through = resume.done_through
        self._carried = list(resume.owed)
        self._starts = [start for start, _ in self._carried]
        self.counts = dict(resume.counts)
        self.owed: list[list[int]] = []
        self._owed_keys: set[str] = set()
        self._done: dict[int, tuple[str | None, bool, str]] = {}
        self.max_owed_ranges = max(1, max_owed_ranges)
        self.max_owed_keys = max(1, max_owed_keys)
        self.stuck = False
        """The mark stopped for good (a record never settled, or no room to owe one): a retry starts there."""
        self.mark = self._first_from(0)

    def in_play(self, index: int) -> bool:
        """Whether this try sends the record at ``index``."""
        return index >= self._through or self._carried_range(index) is not None

    def _carried_range(self, index: int) -> int | None:
        position = bisect.bisect_right(self._starts, index) - 1
        if position >= 0 and self._carried[position][1] >= index:
            return position
        return None

    def _first_from(self, index: int) -> int:
        """The first position in play at or after ``index``."""
        if index >= self._through or self._carried_range(index) is not None:
            return index
        position = bisect.bisect_right(self._starts, index)
        return self._starts[position] if position < len(self._starts) else self._through

    def complete(self, index: int, action: str | None, owed: bool, same_as: str) -> None:
        """Record a finished position; ``action`` None means it was never settled (the run stopped first)."""
        if self.stuck:
            return  # later positions can't move the mark any more: no need to keep them
        self._done[index] = (action, owed, same_as)
        while self.mark in self._done:
            action, owed, same_as = self._done[self.mark]
            if action is None or ((owed or same_as in self._owed_keys) and not self._owe(self.mark, same_as)):
                self.stuck = True
                self._done.clear()
                return
            if not owed and same_as not in self._owed_keys:
                self.counts[action] = self.counts.get(action, 0) + 1
            del self._done[self.mark]
            self.mark = self._first_from(self.mark + 1)

    def _owe(self, index: int, same_as: str) -> bool:
        """Remember ``index`` as owed (and its key, so later records of it are owed too); False: no room."""
        if same_as not in self._owed_keys and len(self._owed_keys) >= self.max_owed_keys:
            return False
        if self.owed and self.owed[-1][1] == index - 1:
            self.owed[-1][1] = index
        else:
            # The new range, the carried ranges after it and the rest of the one holding it must fit.
            carried_after = len(self._starts) - bisect.bisect_right(self._starts, index)
            holding = 0 if self._carried_range(index) is None else 1
            if len(self.owed) + 1 + carried_after + holding > self.max_owed_ranges:
                return False
            self.owed.append([index, index])
        self._owed_keys.add(same_as)
        return True

    def snapshot(self, first_rejection: dict[str, Any] | None, ledgers: list[str]) -> Resume:
        """What a retry resumes from now: settled before the mark, owed ranges, the rest from the mark."""
        through = max(self.mark, self._through)
        owed = [(start, end) for start, end in self.owed]
        for start, end in self._carried:
            if end >= self.mark:
                owed.append((max(start, self.mark), end))
        return Resume(through, _merged(owed), dict(self.counts), first_rejection, ledgers)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and merged[-1][1] >= start - 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def rejection_state(outcome: Outcome) -> dict[str, Any]:
    """A rejection as the state keeps it (the message cut short: the value must stay small)."""
    message = (outcome.error_message or "")[:MESSAGE_CHARS]
    return {
        "index": outcome.index,
        "key": outcome.key[:200],
        "error_code": outcome.error_code,
        "error_message": message,
        "status": outcome.status,
    }


def rejection_from_state(value: Mapping[str, Any]) -> Outcome:
    return Outcome(
        int(value.get("index", -1)),
        str(value.get("key", "")),
        REJECTED,
        status=str(value.get("status") or "error"),
        error_code=value.get("error_code"),
        error_message=value.get("error_message"),
    )
