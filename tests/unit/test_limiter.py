"""The rate limiter on a fake clock: pacing, pauses, advertised limits, 429 back-off and recovery, no real sleeps."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from airflow_provider_crm.transport.limiter import (
    BACKOFF_FACTOR,
    HEADROOM,
    LATE_CREDIT,
    MIN_FRACTION,
    RECOVERY_STEP,
    RateLimiter,
    shared_limiter,
)


class FakeClock:
    """A clock that only moves when the limiter sleeps (or a test says time passed)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter_at(rate: float, clock: FakeClock, burst: float | None = None) -> RateLimiter:
    return RateLimiter(rate, burst=burst, clock=clock, sleep=clock.sleep)


def following(rate: float, clock: FakeClock, share: float = 0.9) -> RateLimiter:
    """A limiter without an explicit rate: starts at ``rate`` and follows ``share`` of what is advertised."""
    return RateLimiter(rate, clock=clock, sleep=clock.sleep, share=share)


def send_times(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(clock.now)
    return times


def test_a_rate_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        limiter_at(0, clock)


def test_requests_are_spaced_evenly_just_under_the_rate(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    times = send_times(limiter, clock, 5)
    assert times[0] == 100.0, "the first request goes at once"
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert gaps == pytest.approx([1 / (10 * HEADROOM)] * 4)
    assert limiter.waited == pytest.approx(4 / (10 * HEADROOM))


def test_idle_time_builds_up_to_the_burst_and_a_little_credit_no_more(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock, burst=3)
    clock.advance(60.0)
    times = send_times(limiter, clock, 5)
    assert times[:3] == [160.0, 160.0, 160.0]
    spacing = 1 / (10 * HEADROOM)
    assert times[3] - times[2] == pytest.approx((1 - LATE_CREDIT) * spacing)
    assert times[4] - times[3] == pytest.approx(spacing)


def test_late_wake_ups_do_not_slow_the_pace() -> None:
    late = FakeClock()
    late_by = 0.004  # every sleep overshoots by 4 ms, as a busy interpreter makes it
    limiter = RateLimiter(17.1 / HEADROOM, clock=late, sleep=lambda s: late.sleep(s + late_by))
    times = send_times(limiter, late, 200)
    assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(17.1, rel=1e-3)


def test_no_window_holds_more_than_the_rate_plus_one_request_and_the_credit(clock: FakeClock) -> None:
    jitter = iter([0.0, 0.012, 0.001, 0.02, 0.0, 0.006] * 100)
    limiter = RateLimiter(17.1 / HEADROOM, clock=clock, sleep=lambda s: clock.sleep(s + next(jitter)))
    times = send_times(limiter, clock, 300)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 17.1 + 1 + LATE_CREDIT


def test_pause_holds_every_request_back_and_builds_no_credit(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock, burst=5)
    limiter.pause(2.0)
    times = send_times(limiter, clock, 2)
    assert times[0] == pytest.approx(102.0)
    spacing = 1 / (10 * HEADROOM)
    assert times[1] - times[0] == pytest.approx(spacing), "one request at the end of the pause, then spacing"


def test_pause_counts_from_when_the_request_was_sent(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    clock.advance(0.5)
    limiter.pause(1.0, since=100.0)
    limiter.acquire()
    assert clock.now == pytest.approx(101.0)


def test_a_shorter_pause_does_not_cut_a_longer_one(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    limiter.pause(3.0)
    limiter.pause(1.0)
    limiter.acquire()
    assert clock.now == pytest.approx(103.0)


def test_an_explicit_rate_comes_down_to_what_the_server_advertises(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    limiter.heed_advertised(5.0)
    assert limiter.configured_rate == pytest.approx(5.0 * HEADROOM)
    assert limiter.rate == pytest.approx(5.0 * HEADROOM)
    times = send_times(limiter, clock, 2)
    assert times[1] - times[0] == pytest.approx(1 / (5.0 * HEADROOM))


def test_an_explicit_rate_is_never_raised_and_ignores_nonsense(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    for advertised in (50.0, 0.0, -3.0, math.nan, math.inf):
        limiter.heed_advertised(advertised)
    assert limiter.configured_rate == pytest.approx(10 * HEADROOM)
    assert limiter.rate == pytest.approx(10 * HEADROOM)
    limiter.heed_advertised(4.0)
    limiter.heed_advertised(50.0)
    assert limiter.configured_rate == pytest.approx(4.0 * HEADROOM), "a lower limit once seen stays the ceiling"


def test_a_following_limiter_starts_at_the_default_and_moves_to_its_share(clock: FakeClock) -> None:
    limiter = following(10, clock)
    assert limiter.configured_rate == pytest.approx(10 * HEADROOM), "the documented default until told otherwise"
    limiter.heed_advertised(19.0)
    assert limiter.configured_rate == pytest.approx(0.9 * 19.0)
    assert limiter.rate == pytest.approx(0.9 * 19.0), "upwards"
    times = send_times(limiter, clock, 3)
    assert [b - a for a, b in pairwise(times)] == pytest.approx([1 / (0.9 * 19.0)] * 2)
    limiter.heed_advertised(5.0)
    assert limiter.rate == pytest.approx(0.9 * 5.0), "and down, following the latest value"
    limiter.heed_advertised(1000 / 60)
    assert limiter.rate == pytest.approx(0.9 * 1000 / 60)


def test_a_following_limiter_ignores_nonsense(clock: FakeClock) -> None:
    limiter = following(10, clock)
    limiter.heed_advertised(19.0)
    for advertised in (0.0, -19.0, math.nan, math.inf, -math.inf):
        limiter.heed_advertised(advertised)
    assert limiter.configured_rate == pytest.approx(0.9 * 19.0)
    assert limiter.rate == pytest.approx(0.9 * 19.0)


def test_a_full_share_still_keeps_the_headroom(clock: FakeClock) -> None:
    limiter = following(10, clock, share=1.0)
    limiter.heed_advertised(20.0)
    assert limiter.configured_rate == pytest.approx(20.0 * HEADROOM)


def test_a_share_must_be_in_range(clock: FakeClock) -> None:
    for share in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="share must be above 0 and at most 1"):
            following(10, clock, share=share)


def test_a_throttled_rate_recovers_towards_a_raised_ceiling_not_past_it(clock: FakeClock) -> None:
    limiter = following(10, clock)
    limiter.throttle(None)
    lowered = limiter.rate
    limiter.heed_advertised(20.0)
    assert limiter.rate == lowered, "a 429 slowed it down; a higher advertised limit does not undo that at once"
    for _ in range(1000):
        limiter.succeeded()
    assert limiter.rate == pytest.approx(0.9 * 20.0)
    limiter.throttle(None)
    limiter.heed_advertised(2.0)
    assert limiter.rate == pytest.approx(0.9 * 2.0), "a lower ceiling caps a throttled rate too"


def test_throttle_pauses_for_the_wait_and_lowers_the_rate(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    limiter.throttle(1.5)
    assert limiter.throttled == 1
    assert limiter.rate == pytest.approx(10 * HEADROOM * BACKOFF_FACTOR)
    limiter.acquire()
    assert clock.now == pytest.approx(101.5)


def test_throttle_without_a_wait_only_slows_down(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    limiter.throttle(None)
    limiter.acquire()
    assert clock.now == 100.0
    assert limiter.rate == pytest.approx(10 * HEADROOM * BACKOFF_FACTOR)


def test_repeated_throttles_stop_at_the_floor(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    for _ in range(100):
        limiter.throttle(None)
    assert limiter.throttled == 100
    assert limiter.rate == pytest.approx(10 * HEADROOM * MIN_FRACTION)


def test_successes_step_the_rate_back_up_to_the_configured_one(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    configured = limiter.configured_rate
    limiter.throttle(None)
    lowered = limiter.rate
    for _ in range(9):
        limiter.succeeded()
    assert limiter.rate == lowered, "nine successes are not yet a run"
    limiter.succeeded()
    assert limiter.rate == pytest.approx(lowered + configured * RECOVERY_STEP)
    for _ in range(100):
        limiter.succeeded()
    assert limiter.rate == pytest.approx(configured), "recovery stops at the configured rate"


def test_a_throttle_restarts_the_run_of_successes(clock: FakeClock) -> None:
    limiter = limiter_at(10, clock)
    limiter.throttle(None)
    for _ in range(9):
        limiter.succeeded()
    limiter.throttle(None)
    lowered = limiter.rate
    limiter.succeeded()
    assert limiter.rate == lowered


def test_one_limiter_per_connection_and_rate() -> None:
    first = shared_limiter("Kaiten", "test_limiter_conn", 5.0)
    assert shared_limiter("Kaiten", "test_limiter_conn", 5.0) is first
    assert shared_limiter("MicroBase", "test_limiter_conn", 5.0) is not first
    changed = shared_limiter("Kaiten", "test_limiter_conn", 7.0)
    assert changed is not first and changed.requested_rate == 7.0
    follower = shared_limiter("Kaiten", "test_limiter_conn", 7.0, share=0.9)
    assert follower is not changed and follower.share == 0.9
    follower.heed_advertised(20.0)
    again = shared_limiter("Kaiten", "test_limiter_conn", 7.0, share=0.9)
    assert again is follower and again.rate == pytest.approx(18.0), "what it learned is kept for the next hook"
