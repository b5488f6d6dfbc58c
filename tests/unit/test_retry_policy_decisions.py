"""Retry decisions for errors the hooks really raise against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from airflow_provider_crm import retry_policy
from airflow_provider_crm.bulk.ids import TooManyIdsError
from airflow_provider_crm.bulk.policy import BulkRejectedError
from airflow_provider_crm.errors import CrmAuthenticationError, CrmError
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.operators.bulk import KustomerBulkCreateKObjectsOperator, MicroBaseBulkUpdateCustomersOperator
from airflow_provider_crm.retry_policy import crm_retry_kwargs, decide
from airflow_provider_crm.sandbox import DropAfterStore, OperationFailure, RateLimit, Sandbox, ServerError
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


def bulk_error(records: list[dict], tmp_path: Path, **kwargs: object) -> CrmError:
    """What a bulk create task raises on ``records`` (its ledger in ``tmp_path``)."""
    operator = KustomerBulkCreateKObjectsOperator(
        task_id="t", klass_name="orders", records=records, ledger_path=str(tmp_path / "ledger.jsonl"), **kwargs
    )
    return raised(lambda: operator.execute({}))


def test_a_bulk_run_refused_for_good_fails_at_once(kustomer_conn: str, sandbox: Sandbox, tmp_path: Path) -> None:
    invalid = [{"external_id": f"r-{i}", "title": "t", "custom": {"no suffix": i}} for i in range(3)]
    error = bulk_error(invalid, tmp_path, on_record_error="warn")
    assert isinstance(error, BulkRejectedError) and not error.retryable
    action, _, reason = decide(error)
    assert action == "fail" and "refused for good" in (reason or "")
    assert sandbox.writes("kustomer") == [], "nothing was sent"


def test_a_bulk_run_refused_by_an_outage_is_left_to_the_task_retries(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_connection(
        monkeypatch, "kustomer_default", sandbox.airflow_connection("kustomer") | {"extra": {"max_attempts": 1}}
    )
    sandbox.inject("kustomer", ServerError(status=503, method="POST", count=2))
    records = [{"external_id": f"r-{i}", "title": "t"} for i in range(4)]
    records.append({"external_id": "bad", "title": "t", "custom": {"no suffix": 1}})
    error = bulk_error(records, tmp_path, on_record_error="warn", max_reject_ratio=0.2, mode="per_record")
    assert isinstance(error, BulkRejectedError) and (error.rejected, error.retry_later) == (3, 2)
    assert error.retryable, "once the two 503s are written, 1 of 5 (20%) is within the ratio"
    assert decide(error)[0] == "default"
    assert "2 of them were refused for a reason that can pass" in str(error)

    sandbox.inject("kustomer", ServerError(status=503, method="POST", count=2))
    error = bulk_error(records, tmp_path, on_record_error="warn", max_reject_ratio=0.1, mode="per_record")
    assert isinstance(error, BulkRejectedError) and not error.retryable, "1 of 5 refused for good is over 10%"
    assert decide(error)[0] == "fail"


def test_a_refused_token_names_the_connection_and_leaves_a_ledger(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_connection(monkeypatch, "crm_nightly", sandbox.airflow_connection("kustomer") | {"password": "wrong-token"})
    records = [{"external_id": f"r-{i}", "title": "t"} for i in range(5)]
    error = bulk_error(records, tmp_path, kustomer_conn_id="crm_nightly", max_workers=1)
    assert isinstance(error, CrmAuthenticationError)
    assert "'crm_nightly'" in str(error), "the error names the connection to fix"
    assert decide(error)[0] == "fail"
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert lines and lines[0]["key"] == "r-0" and lines[0]["action"] == "not_attempted"
    assert "401" in lines[0]["error_message"], "the ledger says why the run stopped"


def test_too_many_ids_to_push_fails_at_once() -> None:
    assert decide(TooManyIdsError("too many", limit=10))[0] == "fail"


def test_microbase_ok_false_without_a_code_can_pass_one_with_a_code_cannot(
    microbase_conn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A named business error (``customer_not_found``) is for good; an unnamed failure (a database timeout) is not."""
    customer = sandbox.app("microbase").seed(email="jo@example.com", first_name="Jo")
    sandbox.inject("microbase", OperationFailure(message="connection 0 to mongo:27017 timed out"))
    unnamed = raised(lambda: MicroBaseHook().update_customer(customer, first_name="Joe"))
    assert decide(unnamed)[0] == "default"
    named = raised(lambda: MicroBaseHook().update_customer("nobody", first_name="x"))
    assert decide(named)[0] == "fail"

    sandbox.inject("microbase", OperationFailure(message="connection 0 to mongo:27017 timed out"))
    ledger = tmp_path / "ledger.jsonl"
    operator = MicroBaseBulkUpdateCustomersOperator(
        task_id="t",
        records=[{"id": customer, "first_name": "Joe"}, {"id": "nobody", "first_name": "x"}],
        ledger_path=str(ledger),
        on_record_error="warn",
        max_workers=1,
    )
    error = raised(lambda: operator.execute({}))
    assert isinstance(error, BulkRejectedError) and error.retry_later == 1
    statuses = {line["key"]: line["status"] for line in map(json.loads, ledger.read_text().splitlines())}
    assert statuses == {customer: "retry", "nobody": "error"}
