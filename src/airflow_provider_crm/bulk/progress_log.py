"""Progress lines for long bulk runs: how far, how fast, how long still.

A nightly run of a million records takes many minutes; a person watching the task log wants to see
it move. :class:`ProgressLog` logs a line every ``interval`` seconds from a thread of its own (so a
line comes even while every worker waits for a rate-limit window or a bulk job), and
:func:`summary_line` says how the run ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)


class InfoLog(Protocol):
    """Where the lines go: a :class:`logging.Logger`, or an operator's ``self.log`` (the task log)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


def _duration(seconds: float) -> str:
    """``42s``, ``3m 05s`` or ``2h 07m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


class ProgressLog:
    """Logs ``done`` (of ``expected``, when known), records/s, 429s waited out and time left, every ``interval`` s.

    The rate counts this try's records only (a resumed try starts from what earlier tries settled).

    :param interval: Seconds between two lines.
    :param done: How many records are settled so far (this try's and the earlier tries').
    :param expected: How many records the input holds, when known.
    :param rate_limited: How many 429s the run waited out so far.
    :param clock: Monotonic seconds (a fake one in tests).
    :param logger: Where the lines go: an operator passes its task log (default this module's logger).
    """

    def __init__(
        self,
        interval: float,
        done: Callable[[], int],
        *,
        expected: int | None = None,
        rate_limited: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
        logger: InfoLog = log,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be above 0, got {interval}")
        self.interval = interval
        self.done = done
        self.expected = expected
        self.rate_limited = rate_limited
        self.clock = clock
        self.logger = logger
        self._started = clock()
        self._done_at_start = done()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self) -> str:
        """The progress line for now."""
        done = self.done()
        elapsed = self.clock() - self._started
        rate = (done - self._done_at_start) / elapsed if elapsed > 0 else 0.0
        parts = [f"{done:,} of {self.expected:,} records" if self.expected is not None else f"{done:,} records"]
        if self.expected:
            parts[0] += f" ({done / self.expected:.1%})"
        parts.append(f"{rate:,.1f} records/s")
        parts.append(f"{self.rate_limited():,} 429s waited out")
        if self.expected is not None and rate > 0 and done < self.expected:
            parts.append(f"about {_duration((self.expected - done) / rate)} left")
        return "progress: " + ", ".join(parts)

    def __enter__(self) -> ProgressLog:
        self._thread = threading.Thread(target=self._run, name="crm-bulk-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.logger.info("%s", self.line())


def summary_line(done: int, elapsed: float, counts: Mapping[str, int], rate_limited: int) -> str:
    """How a run ended: records settled, time, rate, records per ledger action, 429s waited out.

    :param done: Records settled (this try's and the earlier tries').
    :param elapsed: This try's seconds.
    :param counts: Records per ledger action.
    :param rate_limited: 429s waited out.
    """
    rate = f"{done / elapsed:,.1f} records/s" if elapsed > 0 else "-"
    actions = ", ".join(f"{action} {count:,}" for action, count in sorted(counts.items()) if count) or "nothing"
    return f"done: {done:,} records in {_duration(elapsed)} ({rate}): {actions}; {rate_limited:,} 429s waited out"
