"""KustomerBulkJobTrigger against the sandbox over loopback: what it asked, what it waited for, what it fired.

Jobs are submitted with the hook, as an operator does before deferring; the trigger's ``run()`` is
then driven with asyncio until its first event, as the triggerer drives it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
import uuid
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger

from airflow_provider_crm._compat import redact
from airflow_provider_crm.get_provider_info import get_provider_info
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.models.kustomer_requests import KObjectCreateRequest
from airflow_provider_crm.sandbox import Latency, RateLimit, Sandbox, ServerError
from airflow_provider_crm.sandbox.journal import JournalEntry
from airflow_provider_crm.triggers.kustomer_bulk import KustomerBulkJobTrigger
from tests.conftest import use_connection

FAST = {"poll_interval": 0.05, "max_poll_interval": 0.2, "max_polls_per_second": 50.0}
"""Timing for tests: jobs take 0.3 s in the sandbox, so a few polls each."""
EVENT_TIMEOUT = 30.0
"""Seconds a test waits for the first event (the jobs themselves take well under a second)."""
UNKNOWN_JOB = "5b3bddb67f8469003df370ff"


def submit(count: int, prefix: str) -> str:
    """Submit ``count`` creates as one bulk job with the hook, as an operator does; the job's id."""
    creates = {
        f"{prefix}-{n}": KObjectCreateRequest.build("orders", title=f"Order {n}", external_id=f"{prefix}-{n}")
        for n in range(count)
    }
    hook = KustomerHook()
    try:
        return hook.submit_bulk_create("orders", creates).id
    finally:
        hook.close()


def first_event(trigger: KustomerBulkJobTrigger, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
    """Drive ``trigger.run()`` until it fires, as the triggerer does; the event's payload."""

    async def drive() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await asyncio.wait_for(events.__anext__(), timeout)
        finally:
            await events.aclose()
        payload: dict[str, Any] = event.payload
        return payload

    return asyncio.run(drive())


def polls(sandbox: Sandbox) -> list[JournalEntry]:
    return [entry for entry in sandbox.journal("kustomer") if entry.path.startswith("/v1/bulk/")]


@pytest.fixture
def fast_jobs(sandbox: Sandbox, kustomer_conn: str) -> Sandbox:
    sandbox.kustomer.configure({"bulk_processing_seconds": 0.3})
    return sandbox


# -- what is stored while deferred -----------------------------------------------------------------


def test_serialize_round_trips_with_ids_and_timing_only(sandbox: Sandbox, kustomer_conn: str) -> None:
    trigger = KustomerBulkJobTrigger(
        kustomer_conn, ["j1", "j2", "j1"], klass_name="orders", deadline=1_900_000_000.5, **FAST
    )

    classpath, kwargs = trigger.serialize()

    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "conn_id": "kustomer_default",
        "job_ids": ["j1", "j2"],
        "klass_name": "orders",
        "poll_interval": 0.05,
        "max_poll_interval": 0.2,
        "deadline": 1_900_000_000.5,
        "max_polls_per_second": 50.0,
    }
    assert sandbox.token("kustomer") not in json.dumps(kwargs) + repr(trigger)


def test_the_deadline_is_absolute_so_a_recreated_trigger_keeps_it(kustomer_conn: str) -> None:
    before = time.time()
    _, kwargs = KustomerBulkJobTrigger(kustomer_conn, ["j1"]).serialize()

    assert before + 6 * 3600 <= kwargs["deadline"] <= time.time() + 6 * 3600
    time.sleep(0.01)
    assert KustomerBulkJobTrigger(**kwargs).serialize()[1]["deadline"] == kwargs["deadline"]


def test_the_trigger_module_is_registered_with_airflow() -> None:
    (entry,) = get_provider_info()["triggers"]
    assert entry["integration-name"] == "Kustomer"
    (module,) = entry["python-modules"]
    assert issubclass(importlib.import_module(module).KustomerBulkJobTrigger, BaseTrigger)


# -- polling to the end ------------------------------------------------------------------------------


def test_complete_once_every_job_is_complete_asking_oldest_first(fast_jobs: Sandbox, kustomer_conn: str) -> None:
    first, second = submit(3, "a"), submit(2, "b")

    event = first_event(KustomerBulkJobTrigger(kustomer_conn, [first, second], klass_name="orders", **FAST))

    assert event == {"status": "complete", "job_ids": [first, second]}
    asked = polls(fast_jobs)
    assert {entry.method for entry in asked} == {"GET"} and {entry.status for entry in asked} == {200}
    targets = [entry.path.rsplit("/", 1)[1] for entry in asked]
    assert targets == sorted(targets, key=[first, second].index), "the second job only once the first is complete"
    assert asked[-1].response_body["data"]["attributes"]["status"] == "complete"
    assert len(fast_jobs.writes("kustomer")) == 2, "the trigger never writes"
    assert fast_jobs.state("kustomer").count() == 5


def test_a_429_on_a_poll_is_waited_out(fast_jobs: Sandbox, kustomer_conn: str) -> None:
    job_id = submit(2, "r")
    fast_jobs.inject("kustomer", RateLimit(method="GET", path_pattern="^/v1/bulk/", retry_after=0.8))

    event = first_event(KustomerBulkJobTrigger(kustomer_conn, [job_id], **FAST))

    assert event["status"] == "complete"
    limited, after, *_ = polls(fast_jobs)
    assert (limited.status, limited.fault, after.status) == (429, "rate_limit", 200)
    assert after.timestamp - limited.timestamp >= 0.75, "the next poll waited as Retry-After said, not a backoff"
    assert [entry.status for entry in polls(fast_jobs)].count(429) == 1


def test_a_server_error_on_a_poll_is_retried(fast_jobs: Sandbox, kustomer_conn: str) -> None:
    job_id = submit(1, "s")
    fast_jobs.inject("kustomer", ServerError(method="GET", path_pattern="^/v1/bulk/", status=503, count=2))

    event = first_event(KustomerBulkJobTrigger(kustomer_conn, [job_id], **FAST))

    assert event["status"] == "complete"
    assert [entry.status for entry in polls(fast_jobs)][:3] == [503, 503, 200]


# -- stopping with a reason ---------------------------------------------------------------------------


def test_an_unknown_job_ends_with_an_error_at_once(fast_jobs: Sandbox, kustomer_conn: str) -> None:
    known = submit(1, "k")

    event = first_event(KustomerBulkJobTrigger(kustomer_conn, [known, UNKNOWN_JOB], klass_name="orders", **FAST))

    assert (event["status"], event["reason"], event["job_id"]) == ("error", "not_found", UNKNOWN_JOB)
    assert (event["completed_job_ids"], event["pending_job_ids"]) == ([known], [UNKNOWN_JOB])
    assert f"Kustomer bulk job {UNKNOWN_JOB!r} in klass 'orders'" in event["message"]
    assert "HTTP 404" in event["message"]
    assert [entry.status for entry in polls(fast_jobs) if UNKNOWN_JOB in entry.path] == [404], "a 404 is not retried"


def test_a_wrong_api_key_ends_with_a_token_free_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"not-the-key-{uuid.uuid4().hex}"
    assert redact(wrong) == wrong
    connection = sandbox.airflow_connection("kustomer") | {"password": wrong}
    conn_id = use_connection(monkeypatch, "kustomer_wrong", connection)
    caplog.set_level(logging.DEBUG)

    event = first_event(KustomerBulkJobTrigger(conn_id, [UNKNOWN_JOB], **FAST))

    assert (event["status"], event["reason"]) == ("error", "authentication")
    assert "HTTP 401" in event["message"] and "'kustomer_wrong'" in event["message"]
    assert wrong not in json.dumps(event) + caplog.text
    assert redact(f"key {wrong}") == "key ***", "the key read in the triggerer is registered with the masker"
    assert sandbox.token("kustomer") not in caplog.text
    (entry,) = polls(sandbox)
    assert (entry.status, entry.authorized) == (401, False)


def test_a_key_without_the_bulk_read_role_ends_naming_it(fast_jobs: Sandbox, kustomer_conn: str) -> None:
    job_id = submit(1, "p")
    fast_jobs.kustomer.roles = ("org.permission.kobject.create",)

    event = first_event(KustomerBulkJobTrigger(kustomer_conn, [job_id], **FAST))

    assert (event["status"], event["reason"], event["job_id"]) == ("error", "permission", job_id)
    assert "org.permission.bulk.read" in event["message"]


def test_the_deadline_ends_the_wait_naming_the_pending_jobs(sandbox: Sandbox, kustomer_conn: str) -> None:
    sandbox.kustomer.configure({"bulk_processing_seconds": 60})
    job_id = submit(1, "d")
    started = time.monotonic()

    event = first_event(KustomerBulkJobTrigger(kustomer_conn, [job_id], deadline=time.time() + 0.5, **FAST))

    assert (event["status"], event["reason"], event["pending_job_ids"]) == ("error", "timeout", [job_id])
    assert "not complete by the deadline" in event["message"]
    assert 0.4 <= time.monotonic() - started < 10
    assert all(entry.status == 200 for entry in polls(sandbox))


def test_an_unusable_connection_ends_with_a_configuration_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_connection(monkeypatch, "kustomer_keyless", sandbox.airflow_connection("kustomer") | {"password": ""})

    event = first_event(KustomerBulkJobTrigger(conn_id, [UNKNOWN_JOB], **FAST))

    assert (event["status"], event["reason"]) == ("error", "configuration")
    assert "'kustomer_keyless' has no token" in event["message"]
    assert polls(sandbox) == [], "nothing is sent without a key"


# -- the event loop is never blocked ------------------------------------------------------------------

TICK = 0.01
MAX_GAP = 1.5
"""A 10 ms ticker beside the trigger may fall this far behind on a loaded machine (the sandbox's threads
share the process), no more: a poll that blocked the loop would stall it for the whole 3 s the sandbox
holds the first answer back."""


def test_polls_never_block_the_event_loop(fast_jobs: Sandbox, kustomer_conn: str) -> None:
    job_id = submit(1, "t")
    fast_jobs.inject("kustomer", Latency(method="GET", path_pattern="^/v1/bulk/", seconds=3.0))
    trigger = KustomerBulkJobTrigger(kustomer_conn, [job_id], **FAST)

    async def drive() -> tuple[dict[str, Any], float]:
        gaps: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(TICK)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        events = trigger.run()
        try:
            event = await asyncio.wait_for(events.__anext__(), EVENT_TIMEOUT)
        finally:
            await events.aclose()
            done.set()
            await ticker
        return event.payload, max(gaps)

    payload, widest = asyncio.run(drive())

    assert payload["status"] == "complete"
    assert polls(fast_jobs)[0].fault == "latency", "the slow answer was waited for"
    assert widest < MAX_GAP, f"the event loop stalled for {widest:.3f}s"


# -- in Airflow: deferred to the trigger and resumed with its event ----------------------------------

WAITING_DAG = """
import pendulum
from airflow.sdk import DAG, BaseOperator
from airflow_provider_crm.triggers.kustomer_bulk import KustomerBulkJobTrigger


class WaitForBulkJobs(BaseOperator):
    def __init__(self, *, job_ids, **kwargs):
        super().__init__(**kwargs)
        self.job_ids = job_ids

    def execute(self, context):
        trigger = KustomerBulkJobTrigger(
            "kustomer_default", self.job_ids, poll_interval=0.05, max_poll_interval=0.2, max_polls_per_second=50
        )
        self.defer(trigger=trigger, method_name="resume")

    def resume(self, context, event):
        if event["status"] != "complete":
            raise RuntimeError(event["message"])
        return event["job_ids"]


with DAG("__DAG_ID__", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    WaitForBulkJobs(task_id="wait", job_ids=JOB_IDS)
"""


def test_a_task_deferred_to_the_trigger_resumes_with_its_event(
    run_dag: Any, fast_jobs: Sandbox, kustomer_conn: str
) -> None:
    job_ids = [submit(2, "x"), submit(1, "y")]

    run = run_dag(WAITING_DAG.replace("JOB_IDS", repr(job_ids)))

    (ti,) = run.get_task_instances()
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="wait") == job_ids
    assert {entry.path for entry in polls(fast_jobs)} == {f"/v1/bulk/{job_id}" for job_id in job_ids}
