"""Chaos mode: a seeded random mix of faults, so a long run meets every failure a client must survive.

For the ``n``-th eligible request of a vendor, :meth:`Chaos.decide` draws from a generator seeded
with ``"{seed}:{vendor}:{n}"``: with probability ``rate`` it picks one kind from ``mix``. The answer
depends on nothing else, so a failing run can be replayed and a test can predict every decision.
Each decision maps onto the ordinary faults of :mod:`~airflow_provider_crm.sandbox.faults`.

Kinds, and whether the request is processed (the write applied) before the client sees the fault:

==================  =========  ===============================================================
kind                processed  what the client sees
==================  =========  ===============================================================
rate_limit          no         the vendor's 429 (its headers and body), a wait in ``retry_after``
server_error        no         a status from ``server_statuses`` with the vendor's error body
gateway_page        no         a status from ``gateway_statuses`` with the gateway's HTML page
drop_before_store   no         the connection closed without an answer
drop_after_store    yes        the connection closed without an answer
slow                yes        the answer after ``slow_seconds`` (longer than the read timeout)
malformed_json      yes        200 with invalid JSON (a trailing comma)
truncated_json      yes        200 with the JSON body cut in half
==================  =========  ===============================================================
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_crm.sandbox.faults import (
    DropAfterStore,
    DropBeforeStore,
    Fault,
    GatewayPage,
    Latency,
    MangledJson,
    RateLimit,
    ServerError,
)

RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
GATEWAY_PAGE = "gateway_page"
DROP_BEFORE_STORE = "drop_before_store"
DROP_AFTER_STORE = "drop_after_store"
SLOW = "slow"
MALFORMED_JSON = "malformed_json"
TRUNCATED_JSON = "truncated_json"

CHAOS_KINDS: tuple[str, ...] = (
    RATE_LIMIT,
    SERVER_ERROR,
    GATEWAY_PAGE,
    DROP_BEFORE_STORE,
    DROP_AFTER_STORE,
    SLOW,
    MALFORMED_JSON,
    TRUNCATED_JSON,
)
PROCESSED_KINDS = frozenset({DROP_AFTER_STORE, SLOW, MALFORMED_JSON, TRUNCATED_JSON})
DEFAULT_MIX: dict[str, float] = dict.fromkeys(CHAOS_KINDS, 1.0)
_TUPLE_FIELDS = ("retry_after", "server_statuses", "gateway_statuses", "methods")  # lists in JSON


@dataclass(frozen=True)
class ChaosDecision:
    """What chaos does to one request; ``n`` is the request's 0-based index among eligible ones."""

    n: int
    kind: str
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None

    @property
    def label(self) -> str:
        """The journal's ``fault`` value, e.g. ``chaos:drop_after_store``."""
        return f"chaos:{self.kind}"

    @property
    def processed(self) -> bool:
        """Whether the request reaches the emulator (so a write is applied)."""
        return self.kind in PROCESSED_KINDS

    def as_faults(self) -> tuple[Latency | None, Fault | None]:
        """The equivalent (delay, outcome) pair of ordinary faults."""
        if self.kind == SLOW:
            return Latency(seconds=self.seconds or 0.0), None
        outcome: Fault
        if self.kind == RATE_LIMIT:
            outcome = RateLimit(retry_after=self.retry_after or 0.0)
        elif self.kind == SERVER_ERROR:
            outcome = ServerError(self.status or 500)
        elif self.kind == GATEWAY_PAGE:
            outcome = GatewayPage(status=self.status or 502)
        elif self.kind == DROP_BEFORE_STORE:
            outcome = DropBeforeStore()
        elif self.kind == DROP_AFTER_STORE:
            outcome = DropAfterStore()
        else:
            outcome = MangledJson(style="malformed" if self.kind == MALFORMED_JSON else "truncated")
        return None, outcome

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (unset details left out)."""
        data: dict[str, Any] = {"n": self.n, "kind": self.kind}
        for key in ("status", "retry_after", "seconds"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


def _check_statuses(name: str, statuses: tuple[int, ...]) -> None:
    if not statuses or not all(
        isinstance(status, int) and not isinstance(status, bool) and 500 <= status <= 599 for status in statuses
    ):
        raise ValueError(f"{name} must be a non-empty list of 5xx codes")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _check_mix(mix: Mapping[str, float]) -> None:
    unknown = sorted(set(mix) - set(CHAOS_KINDS))
    if unknown:
        raise ValueError(f"unknown chaos kind(s) {', '.join(unknown)}; expected some of {', '.join(CHAOS_KINDS)}")
    for kind, weight in mix.items():
        if not _is_number(weight) or weight < 0:
            raise ValueError(f"weight of {kind} must be a finite number >= 0")
    if sum(mix.values()) <= 0:
        raise ValueError("mix needs at least one positive weight")


@dataclass(frozen=True)
class Chaos:
    """Settings of chaos mode for one vendor.

    ``rate`` is the probability that an eligible request is faulted; ``mix`` weighs the kinds
    (``None`` = all kinds equally, stored as :data:`DEFAULT_MIX`; kinds left out never occur).
    ``retry_after`` is the range the 429 wait is drawn from; ``slow_seconds`` must exceed the
    client's read timeout. Eligible are requests under the vendor's prefix (never control
    endpoints), minus OAuth token requests unless ``include_token_endpoints``, narrowed by
    ``methods`` and ``path_pattern`` (``re.search`` in the vendor-relative raw path) when given.
    """

    seed: int
    rate: float = 0.1
    mix: Mapping[str, float] | None = None
    retry_after: tuple[float, float] = (0.05, 0.2)
    slow_seconds: float = 1.0
    server_statuses: tuple[int, ...] = (500, 502, 503, 504)
    gateway_statuses: tuple[int, ...] = (502, 504)
    include_token_endpoints: bool = False
    methods: tuple[str, ...] | None = None
    path_pattern: str | None = None
    _kinds: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _cum_weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer")
        if not _is_number(self.rate) or not 0 <= self.rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        mix = dict(DEFAULT_MIX if self.mix is None else self.mix)
        _check_mix(mix)
        wait = tuple(self.retry_after) if isinstance(self.retry_after, tuple | list) else ()
        if len(wait) != 2 or not all(_is_number(value) for value in wait) or not 0 <= wait[0] <= wait[1]:
            raise ValueError("retry_after must be a (low, high) pair with 0 <= low <= high")
        if not _is_number(self.slow_seconds) or self.slow_seconds < 0:
            raise ValueError("slow_seconds must be a number >= 0")
        if self.methods is not None and not all(isinstance(method, str) and method for method in self.methods):
            raise ValueError("methods must be a list of HTTP method names")
        _check_statuses("server_statuses", self.server_statuses)
        _check_statuses("gateway_statuses", self.gateway_statuses)
        if self.path_pattern is not None:
            try:
                re.compile(self.path_pattern)
            except re.error as exc:
                raise ValueError(f"invalid path_pattern: {exc}") from exc
        set_ = object.__setattr__  # frozen: normalised and derived fields are set once, here
        set_(self, "mix", mix)
        set_(self, "retry_after", wait)
        set_(self, "server_statuses", tuple(self.server_statuses))
        set_(self, "gateway_statuses", tuple(self.gateway_statuses))
        if self.methods is not None:
            set_(self, "methods", tuple(method.upper() for method in self.methods))
        kinds = tuple(kind for kind in CHAOS_KINDS if mix.get(kind, 0) > 0)
        cumulative, total = [], 0.0
        for kind in kinds:
            total += mix[kind]
            cumulative.append(total)
        set_(self, "_kinds", kinds)
        set_(self, "_cum_weights", tuple(cumulative))

    def applies(self, method: str, path: str, *, token_endpoint: bool = False) -> bool:
        """Whether a request is eligible (and so consumes one index ``n``)."""
        if token_endpoint and not self.include_token_endpoints:
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None

    def decide(self, vendor: str, n: int) -> ChaosDecision | None:
        """The fault for the vendor's ``n``-th eligible request (0-based), or ``None``: pure in (seed, vendor, n)."""
        rng = random.Random(f"{self.seed}:{vendor}:{n}")
        # Always three draws, and the roll first: a seed and rate fault the same requests whatever the mix.
        roll, pick, variant = rng.random(), rng.random(), rng.random()
        if roll >= self.rate:
            return None
        index = bisect.bisect_right(self._cum_weights, pick * self._cum_weights[-1])
        kind = self._kinds[min(index, len(self._kinds) - 1)]
        if kind == RATE_LIMIT:
            low, high = self.retry_after
            return ChaosDecision(n, kind, retry_after=round(low + variant * (high - low), 3))
        if kind in (SERVER_ERROR, GATEWAY_PAGE):
            statuses = self.server_statuses if kind == SERVER_ERROR else self.gateway_statuses
            return ChaosDecision(n, kind, status=statuses[int(variant * len(statuses))])
        if kind == SLOW:
            return ChaosDecision(n, kind, seconds=self.slow_seconds)
        return ChaosDecision(n, kind)

    def plan(self, vendor: str, count: int, start: int = 0) -> list[ChaosDecision | None]:
        """Decisions for indices ``start`` .. ``start + count - 1``."""
        return [self.decide(vendor, n) for n in range(start, start + count)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the inverse of :func:`chaos_from_dict`."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        data["mix"] = dict(self.mix or {})
        for key in _TUPLE_FIELDS:
            if data[key] is not None:
                data[key] = list(data[key])
        return data


def chaos_from_dict(data: Mapping[str, Any]) -> Chaos:
    """Build :class:`Chaos` from JSON (lists for the tuple fields); raises ``ValueError``."""
    options = dict(data)
    allowed = {f.name for f in fields(Chaos) if f.init}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown chaos option(s): {', '.join(unknown)}")
    if "seed" not in options:
        raise ValueError("seed is required")
    for key in _TUPLE_FIELDS:
        value = options.get(key)
        if isinstance(value, list):
            options[key] = tuple(value)
        elif value is not None:
            raise ValueError(f"{key} must be a list")
    if "mix" in options and options["mix"] is not None and not isinstance(options["mix"], dict):
        raise ValueError("mix must be an object of kind -> weight")
    try:
        return Chaos(**options)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
