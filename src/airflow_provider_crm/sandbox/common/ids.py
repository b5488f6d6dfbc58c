"""Realistic identifiers and timestamps for emulated records."""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from datetime import datetime, timezone

_PROCESS_BYTES = os.urandom(5).hex()
_counter = itertools.count(random.randrange(1 << 24))
_counter_lock = threading.Lock()


def new_object_id() -> str:
    """A 24-hex-character id laid out like a MongoDB ObjectId (time, process, counter)."""
    with _counter_lock:
        count = next(_counter) & 0xFFFFFF
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_PROCESS_BYTES}{count:06x}"


def utc_iso(moment: datetime) -> str:
    """An aware time in UTC as ``2026-01-02T03:04:05.678Z``.

    :param moment: a timezone-aware datetime.
    """
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_iso() -> str:
    """Current UTC time as ``2026-01-02T03:04:05.678Z``."""
    return utc_iso(datetime.now(timezone.utc))
