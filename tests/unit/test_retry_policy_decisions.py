"""Retry decisions for errors the hooks really raise against the sandbox."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_crm import retry_policy
from airflow_provider_crm.errors import CrmError
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.retry_policy import crm_retry_kwargs, decide
from airflow_provider_crm.sandbox import DropAfterStore, RateLimit, Sandbox, ServerError
from tests.airflow_versions import before_airflow_3_3, requires_airflow_3_3
from tests.conftest import use_connection


def raised(call) -> CrmError:
    with pytest.raises(CrmError) as caught:
        call()
    return caught.value


def test_permanent_errors_fail_at_once(kustomer_conn: str, microbase_conn: str, sandbox: Sandbox) -> None:
    kustomer = KustomerHook()
    errors = [
        raised(lambda: kustomer.create_kobject("k", title="t", custom={"badKey": 1})),  # validation
        raised(lambda: kustomer.get_kobject("k", "0" * 24)),  # 404
        raised(lambda: MicroBaseHook().update_customer("nobody", first_name="x")),  # ok:false on 200
    ]
    sandbox.inject("kustomer", DropAfterStore(method="POST"))
    errors.append(raised(lambda: kustomer.create_kobject("k", title="no external id")))  # outcome unknown
    assert [decide(e)[0] for e in errors] == ["fail"] * 4


def test_rate_limits_retry_after_the_vendor_wait(hubspot_conn: str, sandbox: Sandbox, monkeypatch) -> None:
    use_connection(
        monkeypatch, "hubspot_default", sandbox.airflow_connection("hubspot") | {"extra": {"max_attempts": 1}}
    )
    order = sandbox.app("hubspot").seed({"hs_order_name": "x"})
    sandbox.inject("hubspot", RateLimit(policy="TEN_SECONDLY_ROLLING", interval_ms=7000))
    action, delay, _ = decide(raised(lambda: HubSpotHook().update_order(order, {"hs_order_name": "y"})))
    assert (action, delay) == ("retry", dt.timedelta(seconds=7))

    sandbox.inject("hubspot", RateLimit(policy="DAILY"))
    daily = raised(lambda: HubSpotHook().update_order(order, {"hs_order_name": "y"}))
    now = dt.datetime(2026, 11, 26, 22, 30, tzinfo=dt.timezone.utc)
    action, delay, reason = decide(daily, now=now)
    assert action == "retry" and delay == dt.timedelta(hours=1, minutes=31) and "daily" in reason
    _, delay_paris, _ = decide(daily, daily_reset_timezone="Europe/Paris", now=now)
    assert delay_paris == dt.timedelta(minutes=31)


def test_transient_errors_use_the_task_default(kustomer_conn: str, sandbox: Sandbox, monkeypatch) -> None:
    use_connection(
        monkeypatch, "kustomer_default", sandbox.airflow_connection("kustomer") | {"extra": {"max_attempts": 1}}
    )
    sandbox.inject("kustomer", ServerError(status=503))
    assert decide(raised(lambda: KustomerHook().get_kobject("k", "x" * 24)))[0] == "default"
    assert decide(RuntimeError("not ours"))[0] == "default"


@requires_airflow_3_3("airflow.sdk.RetryPolicy (CrmRetryPolicy's base class)")
def test_policy_serialises_and_is_offered_on_3_3() -> None:
    from airflow_provider_crm.retry_policy import CrmRetryPolicy

    policy = crm_retry_kwargs("Europe/Paris")["retry_policy"]
    assert isinstance(policy, CrmRetryPolicy)
    assert CrmRetryPolicy.deserialize(policy.serialize()).daily_reset_timezone == "Europe/Paris"
    from zoneinfo import ZoneInfoNotFoundError

    with pytest.raises(ZoneInfoNotFoundError):
        CrmRetryPolicy("Mars/Olympus")


@before_airflow_3_3("Leaving the task's own retries alone")
def test_no_policy_before_3_3() -> None:
    assert crm_retry_kwargs("Europe/Paris") == {}
    assert not hasattr(retry_policy, "CrmRetryPolicy")
