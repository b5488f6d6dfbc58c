"""How long to wait before a retry: server hints first, then bounded exponential backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

EPOCH_THRESHOLD = 1_000_000_000
"""A reset value above this is an epoch timestamp, below it a delay (the format is undocumented)."""


@dataclass(frozen=True)
class RetrySettings:
    """Bounds on in-hook retries.

    ``max_attempts`` counts every try including the first. ``max_total_wait`` caps the time spent
    sleeping across all retries of one call; ``max_single_wait`` caps any one sleep, including
    one a server asked for.
    """

    max_attempts: int = 5
    max_total_wait: float = 180.0
    max_single_wait: float = 60.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0


def backoff_delay(attempt: int, settings: RetrySettings, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter for the ``attempt``-th retry (1-based).

    Half of the delay is fixed and half random, so retries from many workers spread out
    without ever collapsing to zero.
    """
    ceiling = min(settings.backoff_max, settings.backoff_base * (2 ** (attempt - 1)))
    jitter = (rng or random).random()
    return ceiling / 2 + ceiling / 2 * jitter


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def parse_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from an ``x-ratelimit-reset`` header of unknown format.

    Large values are read as an epoch timestamp (seconds, or milliseconds when larger still),
    small ones as a delay in seconds.
    """
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number < EPOCH_THRESHOLD:
        return max(0.0, number)
    if number > EPOCH_THRESHOLD * 1000:
        number /= 1000.0
    current = time.time() if now is None else now
    return max(0.0, number - current)


def header_wait(headers: Mapping[str, str]) -> float | None:
    """The wait a response asks for: ``Retry-After`` wins over ``x-ratelimit-reset``."""
    wait = parse_retry_after(headers.get("Retry-After"))
    if wait is None:
        wait = parse_reset(headers.get("x-ratelimit-reset"))
    return wait
