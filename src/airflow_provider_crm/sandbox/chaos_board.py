"""Which vendors run in chaos mode, how many requests each has drawn for, and what fired.

Draws happen under one lock in arrival order, so request ``n`` gets :meth:`Chaos.decide` for
``n``. Which request arrives ``n``-th can vary between runs when clients send concurrently.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from airflow_provider_crm.sandbox.chaos import CHAOS_KINDS, Chaos, ChaosDecision


@dataclass
class _Run:
    chaos: Chaos | None
    requests: int = 0
    fired: Counter[str] = field(default_factory=Counter)


class ChaosBoard:
    """Thread-safe per-vendor chaos settings, request counters and fault counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}

    def set(self, vendor: str, chaos: Chaos | None) -> None:
        """Start a fresh run (counters at zero), or stop drawing while keeping the counters readable."""
        with self._lock:
            if chaos is not None:
                self._runs[vendor] = _Run(chaos)
            elif vendor in self._runs:
                self._runs[vendor].chaos = None

    def get(self, vendor: str) -> Chaos | None:
        """The vendor's active settings, ``None`` when chaos is off."""
        with self._lock:
            run = self._runs.get(vendor)
            return run.chaos if run is not None else None

    def draw(self, vendor: str, method: str, path: str, *, token_endpoint: bool = False) -> ChaosDecision | None:
        """The decision for the next eligible request; ineligible requests consume no index."""
        with self._lock:
            run = self._runs.get(vendor)
            if run is None or run.chaos is None or not run.chaos.applies(method, path, token_endpoint=token_endpoint):
                return None
            decision = run.chaos.decide(vendor, run.requests)
            run.requests += 1
            if decision is not None:
                run.fired[decision.kind] += 1
            return decision

    def stats(self, vendor: str) -> dict[str, int]:
        """Faults fired per kind (every kind listed, zeros included) since chaos was last enabled."""
        with self._lock:
            run = self._runs.get(vendor)
            fired = run.fired if run is not None else Counter()
            return {kind: fired[kind] for kind in CHAOS_KINDS}

    def requests(self, vendor: str) -> int:
        """Eligible requests drawn for since chaos was last enabled."""
        with self._lock:
            run = self._runs.get(vendor)
            return run.requests if run is not None else 0

    def clear(self, vendor: str | None = None) -> None:
        """Turn chaos off and forget counters (all vendors, or one)."""
        with self._lock:
            if vendor is None:
                self._runs.clear()
            else:
                self._runs.pop(vendor, None)
