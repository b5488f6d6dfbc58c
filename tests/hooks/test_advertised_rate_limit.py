"""Without an explicit rate, the hooks follow a share of the limit the sandbox advertises in its headers.

HubSpot advertises ``X-HubSpot-RateLimit-Max`` requests per ``-Interval-Milliseconds``, Kustomer
its org budget per minute in ``x-ratelimit-limit``; both sandboxes enforce what they advertise.
Pacing is read from the sandbox journal (when each request arrived), with headroom for a loaded
machine: the median gap between arrivals, never a single one.
"""

from __future__ import annotations

import statistics
from itertools import pairwise
from typing import Any

import pytest

from airflow_provider_crm.errors import CrmConfigurationError, CrmServerError
from airflow_provider_crm.hooks.base import CrmHook
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import HttpStatus, Sandbox
from airflow_provider_crm.transport.limiter import HEADROOM, RateLimiter
from tests.conftest import use_connection

SHARE = 0.9
HUBSPOT_ADVERTISED = 19.0
"""Requests per second the HubSpot sandbox advertises and enforces: 38 per 2,000 ms (a 2 s window: a
loaded machine's late arrivals cannot crowd 0.9 of it past the limit as easily as into a 1 s one)."""
KUSTOMER_PER_MINUTE = 540
"""The Kustomer org budget the sandbox advertises and enforces: 9 requests/s, below the 16.7/s default."""
KLASS = "ecomm-order"


def connect(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, vendor: str, **extra: Any) -> str:
    """A connection to the sandbox with ``extra`` (and no ``rate_limit_per_second`` unless given)."""
    conn = sandbox.airflow_connection(vendor) | {"extra": {"read_timeout": 5, **extra}}
    return use_connection(monkeypatch, f"{vendor}_advertised", conn)


def limiter_of(hook: CrmHook) -> RateLimiter:
    limiter = hook.transport.limiter
    assert limiter is not None
    return limiter


def median_gap(sandbox: Sandbox, vendor: str, method: str) -> float:
    """Median seconds between consecutive arrivals of ``method`` requests, as the sandbox journal saw them."""
    times = [entry.timestamp for entry in sandbox.journal(vendor) if entry.method == method]
    return statistics.median(later - earlier for earlier, later in pairwise(times))


@pytest.fixture
def hubspot_advertising(sandbox: Sandbox) -> list[str]:
    """The HubSpot sandbox advertising and enforcing 38 requests per 2 s window, with two orders."""
    app = sandbox.app("hubspot")
    app.configure({"burst_limit": int(2 * HUBSPOT_ADVERTISED), "interval_ms": 2000})
    return [app.seed({"hs_order_name": "before"}) for _ in range(2)]


def test_hubspot_moves_up_to_the_share_of_the_advertised_limit(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hubspot_advertising: list[str]
) -> None:
    hook = HubSpotHook(hubspot_conn_id=connect(monkeypatch, sandbox, "hubspot"))
    limiter = limiter_of(hook)
    assert limiter.rate == pytest.approx(HubSpotHook.default_rate_limit * HEADROOM), "starts at the documented 10/s"

    order_id = hubspot_advertising[0]
    for i in range(40):
        hook.update_order(order_id, {"hs_order_name": f"n{i}"})

    target = SHARE * HUBSPOT_ADVERTISED
    assert limiter.configured_rate == pytest.approx(target)
    assert limiter.rate == pytest.approx(target)
    statuses = [entry.status for entry in sandbox.writes("hubspot")]
    assert statuses == [200] * 40, "no 429 at that pace"
    gap = median_gap(sandbox, "hubspot", "PATCH")
    assert gap >= 0.95 / target, f"never faster than {target:g}/s (median gap {gap * 1000:.1f} ms)"
    assert gap < 0.9 / HubSpotHook.default_rate_limit, f"faster than the 10/s default (median gap {gap * 1000:.1f} ms)"
    assert sandbox.state("hubspot").get(order_id)["properties"]["hs_order_name"] == "n39"


def test_kustomer_moves_down_to_the_share_of_the_org_budget(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.app("kustomer").configure({"org_limit_per_minute": KUSTOMER_PER_MINUTE, "enforce_org_limit": True})
    hook = KustomerHook(kustomer_conn_id=connect(monkeypatch, sandbox, "kustomer"))
    limiter = limiter_of(hook)
    assert limiter.rate == pytest.approx(KustomerHook.default_rate_limit * HEADROOM), "starts at 1,000 a minute"

    for i in range(20):
        hook.create_kobject(KLASS, title=f"Order {i}", external_id=f"advertised-{i}")

    target = SHARE * KUSTOMER_PER_MINUTE / 60
    assert limiter.configured_rate == pytest.approx(target)
    assert limiter.rate == pytest.approx(target)
    creates = [entry for entry in sandbox.writes("kustomer") if entry.method == "POST"]
    assert [entry.status for entry in creates] == [201] * 20, "no 429 at that pace"
    assert sandbox.state("kustomer").count(KLASS) == 20
    gap = median_gap(sandbox, "kustomer", "POST")
    assert gap >= 0.95 / target, f"never faster than {target:g}/s (median gap {gap * 1000:.1f} ms)"


def test_an_explicit_rate_is_not_raised_by_a_higher_advertised_limit(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hubspot_advertising: list[str]
) -> None:
    hook = HubSpotHook(hubspot_conn_id=connect(monkeypatch, sandbox, "hubspot", rate_limit_per_second=5))
    for i in range(3):
        hook.update_order(hubspot_advertising[0], {"hs_order_name": f"n{i}"})
    limiter = limiter_of(hook)
    assert limiter.share is None
    assert limiter.rate == pytest.approx(5 * HEADROOM)


def test_an_operator_rate_is_explicit_too(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hubspot_advertising: list[str]
) -> None:
    hook = HubSpotHook(hubspot_conn_id=connect(monkeypatch, sandbox, "hubspot"))
    hook.use_rate_limit(4)
    for i in range(3):
        hook.update_order(hubspot_advertising[0], {"hs_order_name": f"n{i}"})
    assert limiter_of(hook).rate == pytest.approx(4 * HEADROOM)


@pytest.mark.parametrize("advertised", ["lots", "0", "-19", "NaN", "inf"])
def test_an_absurd_advertised_limit_is_ignored(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hubspot_advertising: list[str], advertised: str
) -> None:
    hook = HubSpotHook(hubspot_conn_id=connect(monkeypatch, sandbox, "hubspot", max_attempts=1))
    hook.update_order(hubspot_advertising[0], {"hs_order_name": "first"})
    limiter = limiter_of(hook)
    assert limiter.rate == pytest.approx(SHARE * HUBSPOT_ADVERTISED)

    sandbox.inject("hubspot", HttpStatus(status=503, headers={"X-HubSpot-RateLimit-Max": advertised}))
    with pytest.raises(CrmServerError):
        hook.update_order(hubspot_advertising[0], {"hs_order_name": "second"})
    answered = sandbox.journal("hubspot")[-1]
    assert answered.status == 503
    assert limiter.rate == pytest.approx(SHARE * HUBSPOT_ADVERTISED)


def test_the_share_is_a_connection_extra(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hubspot_advertising: list[str]
) -> None:
    hook = HubSpotHook(hubspot_conn_id=connect(monkeypatch, sandbox, "hubspot", rate_limit_share="0.5"))
    hook.update_order(hubspot_advertising[0], {"hs_order_name": "n"})
    assert limiter_of(hook).rate == pytest.approx(0.5 * HUBSPOT_ADVERTISED)


@pytest.mark.parametrize("share", ["0", "-0.5", "1.5", "most", "nan"])
def test_a_bad_share_is_refused_before_anything_is_sent(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hubspot_advertising: list[str], share: str
) -> None:
    conn_id = connect(monkeypatch, sandbox, "hubspot", rate_limit_share=share)
    hook = HubSpotHook(hubspot_conn_id=conn_id)
    with pytest.raises(CrmConfigurationError) as raised:
        hook.update_order(hubspot_advertising[0], {"hs_order_name": "n"})
    assert "rate_limit_share" in str(raised.value) and conn_id in str(raised.value)
    assert sandbox.journal("hubspot") == []
