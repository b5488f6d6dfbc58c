"""The locked record store the vendor states build on, with or without issued OAuth tokens.

Handlers run with the app's lock held; tests read the state from other threads, so every method
takes the same (re-entrant) lock, and every read hands out a deep copy: a test cannot change the
store by accident.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any


class RecordStore:
    """Records (plain dicts) by key, oldest first, guarded by the app's lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._records: dict[str, dict[str, Any]] = {}

    def records(self) -> list[dict[str, Any]]:
        """Every stored record, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._records.values()))

    def get(self, key: str) -> dict[str, Any] | None:
        """One record by key, or ``None``."""
        with self._lock:
            record = self._records.get(key)
            return copy.deepcopy(record) if record is not None else None

    def count(self) -> int:
        """Number of stored records."""
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()


class TokenIssuingStore(RecordStore):
    """A :class:`RecordStore` of a vendor with an OAuth endpoint, which also remembers the access
    tokens it handed out and when each expires (``clock`` seconds)."""

    def __init__(self, lock: threading.RLock, clock: Callable[[], float] = time.time) -> None:
        super().__init__(lock)
        self._clock = clock
        self._token_expiry: dict[str, float] = {}
        self._tokens_issued = 0

    @property
    def tokens_issued(self) -> int:
        """How many access tokens were handed out since the last :meth:`clear`."""
        with self._lock:
            return self._tokens_issued

    def add_token(self, token: str, expires_at: float) -> None:
        """Remember a token handed out, valid until ``expires_at``."""
        with self._lock:
            self._token_expiry[token] = expires_at
            self._tokens_issued += 1

    def issued_tokens(self) -> list[str]:
        """Every access token handed out since the last :meth:`clear` (tests check none of them leaks)."""
        with self._lock:
            return list(self._token_expiry)

    def token_expiry(self, token: str) -> float | None:
        """When an issued token expires, or ``None`` if it was never issued."""
        with self._lock:
            return self._token_expiry.get(token)

    def token_active(self, token: str) -> bool:
        """Whether a token was issued here and has not expired yet."""
        expiry = self.token_expiry(token)
        return expiry is not None and self._clock() < expiry

    def clear(self) -> None:
        """Forget every record and token, and restart the token count."""
        with self._lock:
            super().clear()
            self._token_expiry.clear()
            self._tokens_issued = 0
