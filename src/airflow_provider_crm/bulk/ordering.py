"""Per-key admission for bulk runs: records that share a key are written one at a time, in input order.

Two writes of one key in flight at once race: the earlier record can land last, a Kaiten
read-merge-write can read a customer another write is about to change (and put a field's old value
back), and a HubSpot batch that repeats an id is refused whole. :class:`KeyGate` holds an item back
while an earlier item of its key is admitted (in a unit being filled, or in flight) and hands the key
to it when that unit is done. Items of other keys never wait for it.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar


class Keyed(Protocol):
    @property
    def same_as(self) -> str: ...


K = TypeVar("K", bound=Keyed)


class KeyGate(Generic[K]):
    """At most one admitted item per key; later items of that key wait in input order.

    Not thread-safe: the runner's dispatching thread is its only caller.
    """

    def __init__(self) -> None:
        self._admitted: set[str] = set()
        self._waiting: dict[str, deque[K]] = {}
        self._ready: deque[K] = deque()
        self.held = 0
        """Items the gate keeps (waiting for their key, or ready to go): what bounds its memory."""

    def admit(self, item: K) -> bool:
        """True when ``item`` may join a unit now; otherwise the gate keeps it until its key is free."""
        if item.same_as in self._admitted:
            self._waiting.setdefault(item.same_as, deque()).append(item)
            self.held += 1
            return False
        self._admitted.add(item.same_as)
        return True

    def done(self, key: str) -> None:
        """The admitted item of ``key`` is finished: its next waiting item becomes ready."""
        queue = self._waiting.get(key)
        if not queue:
            self._admitted.discard(key)
            return
        self._ready.append(queue.popleft())  # the key stays admitted: it passes to that item
        if not queue:
            del self._waiting[key]

    def take_ready(self) -> K | None:
        """The next item whose key was handed to it, or None."""
        if not self._ready:
            return None
        self.held -= 1
        return self._ready.popleft()
