"""KustomerHook against the sandbox over loopback HTTP: what arrives at the server is what counts."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time

import pytest

from airflow_provider_crm.errors import (
    CrmAuthenticationError,
    CrmBadRequestError,
    CrmConfigurationError,
    CrmNotFoundError,
    CrmOutcomeUnknownError,
    CrmRateLimitError,
    CrmServerError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import (
    DropAfterStore,
    DropBeforeStore,
    Latency,
    RateLimit,
    Sandbox,
    ServerError,
)

KLASS = "ecomm-order"


@pytest.fixture(name="hook")
def kustomer_hook(kustomer_conn: str) -> KustomerHook:
    """A hook on ``kustomer_default``, which points at the sandbox (shared by the Kustomer hook tests)."""
    return KustomerHook(kustomer_conn_id=kustomer_conn)


def stored(sandbox: Sandbox, klass: str = KLASS) -> list[dict]:
    return sandbox.state("kustomer").kobjects(klass)


def posts(sandbox: Sandbox) -> list:
    return [e for e in sandbox.writes("kustomer") if e.method == "POST"]


def create_traffic(sandbox: Sandbox, external_id: str) -> list[tuple[str, int | None]]:
    """The creates and externalId lookups the server received for one record, in arrival order."""
    return [
        ("lookup" if e.method == "GET" else "create", e.status)
        for e in sandbox.journal("kustomer")
        if (e.method == "POST" and isinstance(e.body, dict) and e.body.get("externalId") == external_id)
        or (e.method == "GET" and e.segments[-1] == f"externalId={external_id}")
    ]


def wait_for(condition, timeout: float = 10.0) -> None:
    """Poll until ``condition()`` is true (the server may still be answering a slow request)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the sandbox"
        time.sleep(0.02)


def test_create_get_update_and_find_round_trip(hook: KustomerHook, sandbox: Sandbox) -> None:
    created = hook.create_kobject(
        KLASS,
        title="Order 1",
        external_id="o-1",
        custom={"totalNum": 10, "shippedAt": "2026-01-02T03:04:05+01:00"},
        tags=["vip"],
        data={"lines": 2},
    )
    assert stored(sandbox)[0]["id"] == created.id
    assert stored(sandbox)[0]["custom"] == {"totalNum": 10, "shippedAt": "2026-01-02T02:04:05+00:00"}

    updated = hook.update_kobject(KLASS, created.id, custom={"totalNum": 11})
    assert updated.id == created.id
    assert hook.get_kobject(KLASS, created.id).custom["totalNum"] == 11
    assert hook.find_kobject_by_external_id(KLASS, "o-1").id == created.id  # type: ignore[union-attr]
    assert hook.find_kobject_by_external_id(KLASS, "missing") is None

    put = next(e for e in sandbox.writes("kustomer") if e.method == "PUT")
    assert put.body == {"custom": {"totalNum": 11}}, "fields left None must not be sent"


def test_create_linked_to_customer_uses_customer_path(hook: KustomerHook, sandbox: Sandbox) -> None:
    created = hook.create_kobject(KLASS, title="t", customer_id="cust/1")
    assert created.customer_id == "cust/1"
    assert posts(sandbox)[0].path.endswith("/v1/customers/cust%2F1/klasses/ecomm-order")


def test_one_session_is_reused(hook: KustomerHook, sandbox: Sandbox) -> None:
    hook.create_kobject(KLASS, title="a")
    session = hook.transport.session
    hook.create_kobject(KLASS, title="b")
    assert hook.transport.session is session
    assert len(stored(sandbox)) == 2


def test_dropped_after_commit_with_external_id_leaves_exactly_one_record(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", DropAfterStore(method="POST"))
    created = hook.create_kobject(KLASS, title="t", external_id="ext-1")
    assert [o["id"] for o in stored(sandbox)] == [created.id]
    assert len(posts(sandbox)) == 1, "the record was found by externalId, so the POST was not resent"
    lookups = [e for e in sandbox.journal("kustomer") if "externalId=" in e.path]
    assert lookups, "the hook must look the record up before deciding"


def test_dropped_before_commit_with_external_id_is_resent_once(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", DropBeforeStore(method="POST"))
    created = hook.create_kobject(KLASS, title="t", external_id="ext-2")
    assert [o["id"] for o in stored(sandbox)] == [created.id]
    assert len(posts(sandbox)) == 2


def test_unknown_outcome_without_external_id_is_never_resent(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", DropAfterStore(method="POST"))
    with pytest.raises(CrmOutcomeUnknownError, match="may or may not exist"):
        hook.create_kobject(KLASS, title="t")
    assert len(posts(sandbox)) == 1
    assert len(stored(sandbox)) == 1


def test_5xx_on_create_without_external_id_is_not_resent(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", ServerError(status=502, method="POST"))
    with pytest.raises(CrmOutcomeUnknownError) as caught:
        hook.create_kobject(KLASS, title="t")
    assert isinstance(caught.value.cause, CrmServerError)
    assert len(posts(sandbox)) == 1
    assert stored(sandbox) == []


def test_5xx_on_create_with_external_id_checks_then_resends(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", ServerError(status=503, method="POST", count=2))
    created = hook.create_kobject(KLASS, title="t", external_id="ext-3")
    # A 5xx may have been applied: each resend must follow a lookup that found nothing.
    assert create_traffic(sandbox, "ext-3") == [
        ("create", 503),
        ("lookup", 404),
        ("create", 503),
        ("lookup", 404),
        ("create", 201),
    ]
    assert [o["id"] for o in stored(sandbox)] == [created.id]


def test_read_timeout_with_external_id_looks_up_before_resending(sandbox: Sandbox, monkeypatch) -> None:
    import json

    conn = sandbox.airflow_connection("kustomer") | {"extra": {"read_timeout": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    hook = KustomerHook()
    # The answer is late and the write lands only after the delay, so the client times out (1 s)
    # and, after its first backoff (at most 0.5 s), looks up before the store: the lookup finds
    # nothing and it sends the create again. The write lands at 4.5 s: 3 s of headroom for a
    # loaded machine between the lookup and the store.
    sandbox.inject("kustomer", Latency(seconds=4.5, method="POST"))
    created = hook.create_kobject(KLASS, title="t", external_id="slow-1")
    wait_for(lambda: len(posts(sandbox)) == 2)  # the late create is journaled once it is answered
    traffic = create_traffic(sandbox, "slow-1")
    kinds = [kind for kind, _ in traffic]
    # After the second create only lookups: the hook reads the stored record if its create got a 409.
    assert kinds[:3] == ["create", "lookup", "create"] and set(kinds[3:]) <= {"lookup"}, traffic
    assert traffic[1] == ("lookup", 404)
    # Whichever create landed first is the one record; the other got Kustomer's 409.
    assert sorted(status for kind, status in traffic if kind == "create") == [201, 409]
    assert [o["id"] for o in stored(sandbox)] == [created.id]


def test_429_on_create_waits_and_retries(hook: KustomerHook, sandbox: Sandbox) -> None:
    sandbox.inject("kustomer", RateLimit(retry_after=1.0, method="POST"))
    started = time.monotonic()
    created = hook.create_kobject(KLASS, title="t")  # no external id: a 429 was never applied
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0, f"waited only {elapsed:.2f}s"
    assert [e.status for e in posts(sandbox)] == [429, 201]
    assert [o["id"] for o in stored(sandbox)] == [created.id]


def test_429_without_retry_after_uses_reset_header(hook: KustomerHook, sandbox: Sandbox) -> None:
    # x-ratelimit-reset says 1.5 s: longer than the first backoff (at most 0.5 s), far shorter than
    # the 60 s default for a 429 without hints (capped at 8 s here so a regression fails fast).
    sandbox.inject("kustomer", RateLimit(retry_after=1.5, send_retry_after_header=False, method="PUT"))
    hook.transport.retry = dataclasses.replace(hook.transport.retry, max_single_wait=8.0)
    created = hook.create_kobject(KLASS, title="t")
    hook.update_kobject(KLASS, created.id, title="u")
    puts = [e for e in sandbox.writes("kustomer") if e.method == "PUT"]
    assert [e.status for e in puts] == [429, 200]
    gap = puts[1].timestamp - puts[0].timestamp
    assert 1.5 <= gap < 7.0, f"resent {gap:.2f}s after the 429; the reset header asked for 1.5s"


def test_persistent_429_gives_up_with_typed_error(kustomer_conn: str, sandbox: Sandbox, monkeypatch) -> None:
    import json

    conn = sandbox.airflow_connection("kustomer") | {"extra": {"max_attempts": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    sandbox.inject("kustomer", RateLimit(retry_after=0.1, count=5))
    with pytest.raises(CrmRateLimitError) as caught:
        KustomerHook().create_kobject(KLASS, title="t")
    assert caught.value.status == 429
    assert caught.value.retry_after == pytest.approx(0.1)
    assert caught.value.code == "too_many_requests"
    assert len(posts(sandbox)) == 2
    assert stored(sandbox) == []


def test_put_is_retried_on_5xx_and_dropped_connection(hook: KustomerHook, sandbox: Sandbox) -> None:
    created = hook.create_kobject(KLASS, title="t")
    sandbox.inject("kustomer", ServerError(status=500, method="PUT"))
    sandbox.inject("kustomer", DropAfterStore(method="PUT"))
    hook.update_kobject(KLASS, created.id, title="new")
    assert stored(sandbox)[0]["title"] == "new"
    assert [e.status for e in sandbox.writes("kustomer") if e.method == "PUT"] == [500, None, 200]


def test_bad_request_is_not_retried_and_parses_error(hook: KustomerHook, sandbox: Sandbox) -> None:
    created = hook.create_kobject(KLASS, title="t", external_id="dup")
    with pytest.raises(CrmBadRequestError) as caught:
        # Bypass local validation to see the vendor's own answer.
        hook.transport.request("PUT", f"/v1/klasses/{KLASS}/{created.id}", json={"custom": {"x": 1}})
    assert caught.value.code == "bad_request"
    assert "x" in caught.value.message
    assert len([e for e in sandbox.writes("kustomer") if e.method == "PUT"]) == 1


def test_conflicting_external_id_returns_the_stored_record(hook: KustomerHook, sandbox: Sandbox) -> None:
    first = hook.create_kobject(KLASS, title="t", external_id="same")
    second = hook.create_kobject(KLASS, title="t again", external_id="same")
    assert second.id == first.id
    assert len(stored(sandbox)) == 1


def test_not_found_is_typed(hook: KustomerHook) -> None:
    with pytest.raises(CrmNotFoundError) as caught:
        hook.get_kobject(KLASS, "0" * 24)
    assert caught.value.status == 404


@pytest.mark.parametrize("evil", ["a/b", "..", "%2F", "x?y=1", "x#y", "a\nb", "ünï/../..", "."])
def test_ids_never_change_the_path(hook: KustomerHook, sandbox: Sandbox, evil: str) -> None:
    victim = hook.create_kobject(KLASS, title="victim")
    with contextlib.suppress(CrmNotFoundError, CrmValidationError):
        hook.update_kobject(KLASS, evil, title="pwned")
    assert stored(sandbox)[0]["title"] == "victim"
    for entry in sandbox.journal("kustomer")[1:]:
        assert entry.path.startswith(f"/v1/klasses/{KLASS}/")
        assert entry.path.count("/") == 4
        assert victim.id not in entry.path


def test_empty_ids_are_refused_before_sending(hook: KustomerHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmValidationError, match="kobject_id"):
        hook.update_kobject(KLASS, "", title="x")
    with pytest.raises(CrmValidationError, match="klass_name"):
        hook.create_kobject("", title="x")
    assert sandbox.journal("kustomer") == []


def test_bad_custom_attribute_sends_nothing(hook: KustomerHook, sandbox: Sandbox) -> None:
    with pytest.raises(CrmValidationError, match=r"custom\.totalNum: must be a number, got str \(got 'ten'\)"):
        hook.create_kobject(KLASS, title="t", custom={"totalNum": "ten"})
    assert sandbox.journal("kustomer") == []


def test_wrong_token_is_an_auth_error_without_the_token(sandbox: Sandbox, monkeypatch, caplog) -> None:
    import json

    secret = "wrong-token-that-must-not-leak-1234"
    conn = sandbox.airflow_connection("kustomer") | {"password": secret}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CrmAuthenticationError) as caught:
        KustomerHook().create_kobject(KLASS, title="t")
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.__dict__)
    assert secret not in caplog.text
    assert len(sandbox.journal("kustomer")) == 1, "401 is never retried"


def test_test_connection_is_read_only(hook: KustomerHook, sandbox: Sandbox) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert sandbox.writes("kustomer") == []
    assert [e.path for e in sandbox.journal("kustomer")] == ["/v1/auth/tokens/current"]


def test_test_connection_explains_failures(sandbox: Sandbox, monkeypatch) -> None:
    import json

    conn = sandbox.airflow_connection("kustomer") | {"password": "not-the-right-key-000"}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    ok, message = KustomerHook().test_connection()
    assert not ok and "refused the credentials" in message and "not-the-right-key" not in message

    conn = {"conn_type": "kustomer", "host": "http://127.0.0.1:9", "password": "x" * 20}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn | {"extra": {"max_attempts": 1}}))
    ok, message = KustomerHook().test_connection()
    assert not ok and "Could not reach Kustomer" in message


def test_region_picks_host_and_plain_http_is_refused(monkeypatch) -> None:
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps({"conn_type": "kustomer", "extra": {"region": "eu"}})
    )
    assert KustomerHook().base_url() == "https://api.prod2.kustomerapp.com"
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps({"conn_type": "kustomer"}))
    assert KustomerHook().base_url() == "https://api.kustomerapp.com"
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps({"conn_type": "kustomer", "extra": {"region": "mars"}})
    )
    with pytest.raises(CrmConfigurationError, match="mars"):
        KustomerHook().base_url()
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps({"conn_type": "kustomer", "host": "http://crm.example"})
    )
    with pytest.raises(CrmConfigurationError, match="allow_insecure_http"):
        KustomerHook().base_url()


def test_timeouts_and_tls_come_from_extras(sandbox: Sandbox, monkeypatch) -> None:
    import json

    conn = sandbox.airflow_connection("kustomer") | {
        "extra": {"connect_timeout": "3", "read_timeout": 7, "verify_ssl": "false"}
    }
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    transport = KustomerHook().transport
    assert transport.timeouts.as_tuple() == (3.0, 7.0)
    assert transport.session.verify is False
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(sandbox.airflow_connection("kustomer")))
    default = KustomerHook().transport
    assert default.timeouts.as_tuple() == (10.0, 30.0)
    assert default.session.verify is True


def test_record_url_defaults_to_the_customer_timeline_on_an_org_host(monkeypatch) -> None:
    import json

    conn = {"conn_type": "kustomer", "host": "https://acme.api.kustomerapp.com", "password": "k" * 20}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    hook = KustomerHook()
    assert (
        hook.record_url(id="k1", klass="orders", customer_id="c/1")
        == "https://acme.kustomerapp.com/app/customers/c%2F1"
    )
    assert hook.record_url(id="k1", klass="orders", customer_id=None) is None
    conn["extra"] = {"record_url_template": "https://x.example/{klass}/{id}/{nope}"}
    monkeypatch.setenv("AIRFLOW_CONN_KUSTOMER_DEFAULT", json.dumps(conn))
    assert KustomerHook().record_url(id="k1", klass="orders") is None
