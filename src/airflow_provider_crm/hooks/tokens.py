"""Access tokens obtained at run time (OAuth), cached until shortly before they expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_crm._compat import mask_secret

EXPIRY_MARGIN_SECONDS = 60.0
"""Renew this long before the stated expiry, so a token never expires mid-request."""


def monotonic() -> float:
    """The clock :class:`CachedToken` reads unless given one; looked up at each use, so tests can replace it."""
    return time.monotonic()


@dataclass(frozen=True)
class IssuedToken:
    """A token as the vendor issued it; ``expires_in`` in seconds (``None``: no stated expiry)."""

    access_token: str
    expires_in: float | None = None


class CachedToken:
    """Fetches a token on first use and again when it is about to expire or was invalidated.

    Every fetched token is registered with Airflow's masker at once. Thread-safe, so a pool of
    workers sharing one hook fetches one token, not one each. ``clock`` (seconds) defaults to
    this module's :func:`monotonic`.
    """

    def __init__(self, fetch: Callable[[], IssuedToken], clock: Callable[[], float] | None = None) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0

    def __call__(self) -> str:
        with self._lock:
            requested = self._now()
            if self._token is None or requested >= self._renew_at:
                issued = self._fetch()
                mask_secret(issued.access_token)
                self.fetches += 1
                self._token = issued.access_token
                lifetime = issued.expires_in if issued.expires_in is not None else float("inf")
                margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 10)
                # Counted from the request, not the answer: the vendor's clock started in between.
                self._renew_at = requested + lifetime - margin
            return self._token

    def _now(self) -> float:
        return self._clock() if self._clock is not None else monotonic()

    def invalidate(self) -> None:
        """Forget the token (e.g. after the vendor said it is invalid) so the next call fetches one."""
        with self._lock:
            self._token = None

    def __repr__(self) -> str:
        return "CachedToken(<redacted>)"
