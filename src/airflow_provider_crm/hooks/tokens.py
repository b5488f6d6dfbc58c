"""Access tokens obtained at run time (OAuth), cached until shortly before they expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_crm._compat import mask_secret

EXPIRY_MARGIN_SECONDS = 60.0
"""Renew this long before the stated expiry, so a token never expires mid-request."""


@dataclass(frozen=True)
class IssuedToken:
    """A token as the vendor issued it; ``expires_in`` in seconds (``None``: no stated expiry)."""

    access_token: str
    expires_in: float | None = None


class CachedToken:
    """Fetches a token on first use and again when it is about to expire or was invalidated.

    Every fetched token is registered with Airflow's masker at once. Thread-safe, so a pool of
    workers sharing one hook fetches one token, not one each.
    """

    def __init__(self, fetch: Callable[[], IssuedToken], clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                issued = self._fetch()
                mask_secret(issued.access_token)
                self.fetches += 1
                self._token = issued.access_token
                lifetime = issued.expires_in if issued.expires_in is not None else float("inf")
                margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 10)
                self._renew_at = self._clock() + lifetime - margin
            return self._token

    def invalidate(self) -> None:
        """Forget the token (e.g. after the vendor said it is invalid) so the next call fetches one."""
        with self._lock:
            self._token = None

    def __repr__(self) -> str:
        return "CachedToken(<redacted>)"
