"""The workloads of the throughput benchmark, run through what a user would otherwise reach for.

- Kustomer KObject creates through ``HttpHook`` (apache-airflow-providers-http) in a loop, with
  the sandbox enforcing a Kustomer org limit per minute.
- HubSpot order updates through the official ``hubspot-api-client`` in a loop, with the README's
  rate-limit retry middleware ``Retry(total=5, status_forcelist=(429,))``, against an enforced
  HubSpot burst limit; and the same with ``allowed_methods=None`` added, the smallest change
  that makes urllib3 retry a PATCH at all.

Every request gets 50 ms of latency. Each loop catches a call that raises and moves on to the
next record, as a loop that must get through a list does (a bare loop would stop at the first
429 and lose the rest).
A record counts as delivered only if the sandbox's state holds it afterwards; "lost" is
``records - delivered``, whatever the client believed. Results are fractions of the configured
limit, which does not depend on machine speed as long as the client can exceed the limit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from _common import BenchResult, Row, quiet_logging, standalone

NAME = "peers"
LATENCY_S = 0.05
KLASS = "bench-order"


@dataclass(frozen=True)
class Workload:
    """What to write, where, and under which limit (``limit_rps`` in write requests per second)."""

    vendor: str
    records: int
    limit_rps: float
    describe_limit: str
    tag: str
    window_s: float
    """Length of the vendor's limit window."""


@dataclass
class Outcome:
    """What one tool achieved on one workload, as the sandbox saw it."""

    tool: str
    workload: Workload
    delivered: int
    raised: int
    elapsed_s: float
    write_statuses: Counter[int | None]
    records_per_request: int = 1
    extra: str = ""
    arrivals: list[float] = field(default_factory=list)
    """When each successful write request reached the sandbox (seconds, wall clock)."""

    @property
    def lost(self) -> int:
        return self.workload.records - self.delivered

    @property
    def ok_requests(self) -> int:
        return sum(count for status, count in self.write_statuses.items() if status is not None and status < 300)

    @property
    def too_many(self) -> int:
        return self.write_statuses.get(429, 0)

    @property
    def records_per_s(self) -> float:
        return self.delivered / self.elapsed_s

    @property
    def limit_use(self) -> float:
        """Successful write requests per second as a fraction of the limit."""
        return self.ok_requests / self.elapsed_s / self.workload.limit_rps

    def pacing(self) -> str:
        """How evenly the successful writes were spread: the busiest window and the idle stretches."""
        window_s = self.workload.window_s
        times = sorted(self.arrivals)
        if len(times) < 2:
            return "too few requests to judge pacing"
        busiest, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window_s:
                start += 1
            busiest = max(busiest, end - start + 1)
        spacing = 1 / self.workload.limit_rps
        gaps = [later - earlier for earlier, later in pairwise(times) if later - earlier > 3 * spacing]
        allowed = self.workload.limit_rps * window_s
        return (
            f"busiest {window_s:g} s window held {busiest} successful writes (limit {allowed:g}); {len(gaps)} gaps "
            f"longer than 3x the nominal spacing, {sum(gaps) - len(gaps) * spacing:.1f} s idle in total"
        )

    def headline(self) -> str:
        return (
            f"{self.limit_use:.2f} of limit ({self.records_per_s:.1f} rec/s), {self.lost} of "
            f"{self.workload.records} lost, {self.too_many} 429s"
        )


# -- workloads ------------------------------------------------------------------------------------


def kustomer_workload(quick: bool, tag: str) -> Workload:
    """More creates than one minute's org budget allows, so a run must live with the limit."""
    per_minute, records = (240, 300) if quick else (480, 720)
    return Workload("kustomer", records, per_minute / 60, f"org limit {per_minute}/min", tag, 60.0)


def hubspot_workload(quick: bool, tag: str, records: int | None = None) -> Workload:
    burst = 10
    count = records if records is not None else (150 if quick else 300)
    return Workload("hubspot", count, float(burst), f"burst limit {burst} per 1 s", tag, 1.0)


def kustomer_records(workload: Workload) -> list[dict[str, Any]]:
    return [
        {"external_id": f"{workload.tag}-{i}", "title": f"Order {i}", "custom": {"totalNum": i}}
        for i in range(workload.records)
    ]


def arm_kustomer(sandbox: Any, workload: Workload) -> None:
    """Fresh Kustomer state and org window, the limit enforced, latency on every request."""
    from airflow_provider_crm.sandbox import Latency

    sandbox.reset("kustomer")
    sandbox.app("kustomer").configure(
        {"enforce_org_limit": True, "org_limit_per_minute": round(workload.limit_rps * 60)}
    )
    sandbox.inject("kustomer", Latency(seconds=LATENCY_S, count=10**9))


def kustomer_delivered(sandbox: Any, workload: Workload) -> tuple[int, int]:
    """(records of this workload stored, duplicate objects) from the sandbox state."""
    stored = [obj.get("externalId") for obj in sandbox.state("kustomer").kobjects(KLASS)]
    wanted = {f"{workload.tag}-{i}" for i in range(workload.records)}
    ids = [external_id for external_id in stored if external_id in wanted]
    return len(set(ids)), len(stored) - len(set(stored))


def arm_hubspot(sandbox: Any, workload: Workload) -> list[str]:
    """Fresh HubSpot state with one order per record, the burst limit enforced, latency on."""
    from airflow_provider_crm.sandbox import Latency

    sandbox.reset("hubspot")
    app = sandbox.app("hubspot")
    ids = [app.seed({"hs_order_name": "before"}) for _ in range(workload.records)]
    app.configure({"burst_limit": round(workload.limit_rps), "interval_ms": 1000})
    sandbox.inject("hubspot", Latency(seconds=LATENCY_S, count=10**9))
    return ids


def hubspot_value(workload: Workload, index: int) -> str:
    return f"{workload.tag}-{index}"


def hubspot_delivered(sandbox: Any, workload: Workload, ids: list[str]) -> int:
    state = sandbox.state("hubspot")
    delivered = 0
    for index, order_id in enumerate(ids):
        record = state.get(order_id)
        if record is not None and record["properties"].get("hs_order_name") == hubspot_value(workload, index):
            delivered += 1
    return delivered


def write_statuses(sandbox: Any, vendor: str, since_seq: int) -> Counter[int | None]:
    return Counter(entry.status for entry in sandbox.writes(vendor) if entry.seq > since_seq)


def write_arrivals(sandbox: Any, vendor: str, since_seq: int) -> list[float]:
    return [
        entry.timestamp
        for entry in sandbox.writes(vendor)
        if entry.seq > since_seq and entry.status is not None and entry.status < 300
    ]


def last_seq(sandbox: Any, vendor: str) -> int:
    entries = sandbox.journal(vendor)
    return entries[-1].seq if entries else 0


# -- peers ----------------------------------------------------------------------------------------


def run_httphook_kustomer(sandbox: Any, workload: Workload) -> Outcome:
    """Creates KObjects with ``HttpHook.run`` in a loop; a call that raises is counted and skipped."""
    from airflow.providers.http.hooks.http import HttpHook

    quiet_logging()  # HttpHook logs every 4xx response at ERROR level
    conn_id = "bench_kustomer_http"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "http", "host": sandbox.base_url("kustomer")}
    )
    hook = HttpHook(method="POST", http_conn_id=conn_id)
    headers = {"Authorization": f"Bearer {sandbox.token('kustomer')}", "Content-Type": "application/json"}
    arm_kustomer(sandbox, workload)
    since = last_seq(sandbox, "kustomer")
    raised = 0
    started = time.perf_counter()
    for record in kustomer_records(workload):
        body = {"title": record["title"], "externalId": record["external_id"], "custom": record["custom"]}
        try:
            hook.run(endpoint=f"v1/klasses/{KLASS}", json=body, headers=headers)
        except Exception:
            raised += 1
    elapsed = time.perf_counter() - started
    delivered, duplicates = kustomer_delivered(sandbox, workload)
    extra = f"{duplicates} duplicates" if duplicates else ""
    statuses, arrivals = write_statuses(sandbox, "kustomer", since), write_arrivals(sandbox, "kustomer", since)
    return Outcome("HttpHook loop", workload, delivered, raised, elapsed, statuses, extra=extra, arrivals=arrivals)


def _hubspot_client(sandbox: Any, retry: Any) -> Any:
    from hubspot import HubSpot

    client = HubSpot(access_token=sandbox.token("hubspot"), retry=retry)
    api = client.crm.objects.basic_api
    api.api_client.configuration.host = sandbox.base_url("hubspot")
    return api


def run_hubspot_client(sandbox: Any, workload: Workload, *, patch_retry: bool = False) -> Outcome:
    """Updates orders with ``hubspot-api-client`` in a loop; a call that raises is counted and skipped."""
    from hubspot.crm.objects import SimplePublicObjectInput
    from urllib3.util.retry import Retry

    if patch_retry:
        retry, tool = Retry(total=5, status_forcelist=(429,), allowed_methods=None), "hubspot-api-client + PATCH retry"
    else:
        retry, tool = Retry(total=5, status_forcelist=(429,)), "hubspot-api-client (README Retry)"
    api = _hubspot_client(sandbox, retry)
    ids = arm_hubspot(sandbox, workload)
    since = last_seq(sandbox, "hubspot")
    raised = 0
    started = time.perf_counter()
    for index, order_id in enumerate(ids):
        body = SimplePublicObjectInput(properties={"hs_order_name": hubspot_value(workload, index)})
        try:
            api.update(object_type="orders", object_id=order_id, simple_public_object_input=body)
        except Exception:
            raised += 1
    elapsed = time.perf_counter() - started
    delivered = hubspot_delivered(sandbox, workload, ids)
    statuses, arrivals = write_statuses(sandbox, "hubspot", since), write_arrivals(sandbox, "hubspot", since)
    return Outcome(tool, workload, delivered, raised, elapsed, statuses, arrivals=arrivals)


PeerRunner = Callable[[Any, Workload], Outcome]


def run_peers(sandbox: Any, quick: bool) -> dict[str, Outcome]:
    """Every peer on its workload, one after the other, against one in-process sandbox."""
    return {
        "kustomer_httphook": run_httphook_kustomer(sandbox, kustomer_workload(quick, "httphook")),
        "hubspot_client": run_hubspot_client(sandbox, hubspot_workload(quick, "client")),
        "hubspot_client_patch_retry": run_hubspot_client(
            sandbox, hubspot_workload(quick, "client-retry"), patch_retry=True
        ),
    }


def peer_rows(outcomes: dict[str, Outcome]) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    for outcome in outcomes.values():
        workload = outcome.workload
        rows.append(
            Row(
                benchmark=f"peers: {workload.vendor}",
                measured=f"{outcome.tool}: {workload.records} records, {workload.describe_limit} enforced, "
                f"{LATENCY_S * 1000:.0f} ms latency; delivered = found in sandbox state",
                ours="(see throughput)",
                baseline=outcome.headline() + (f", {outcome.extra}" if outcome.extra else ""),
                ratio="-",
                target="-",
                passed=None,
            )
        )
    notes = []
    for key, outcome in outcomes.items():
        notes.append(
            f"{outcome.tool}: {outcome.raised} calls raised, {outcome.lost} records lost, "
            f"{outcome.too_many} answers were 429, {outcome.ok_requests} writes succeeded in "
            f"{outcome.elapsed_s:.1f} s. " + _why(key, outcome)
        )
    return rows, notes


def _why(key: str, outcome: Outcome) -> str:
    if key == "kustomer_httphook":
        return (
            "HttpHook raises on any 4xx (429 included) and has no rate-limit handling; the loop burns through "
            "the rest of the minute's window getting 429s, so every record sent after the budget ran out is lost. "
            "A delivered rate above 1.0 of the limit is possible because the org limit is a fixed one-minute "
            "window that a fast client can spend early."
        )
    if key == "hubspot_client":
        return (
            "urllib3's Retry only retries the methods in `allowed_methods`, which by default excludes PATCH and "
            "POST, so the README's rate-limit middleware never retries an update: each 429 raises at once."
        )
    return (
        "with PATCH allowed, urllib3 retries a 429 immediately (HubSpot sends no Retry-After and "
        "backoff_factor defaults to 0), so five retries are spent within a few hundred ms of one another "
        "and records are still lost whenever the window does not free up in time."
    )


def run(quick: bool) -> BenchResult:
    from airflow_provider_crm.sandbox import Sandbox

    with Sandbox() as sandbox:
        outcomes = run_peers(sandbox, quick)
    rows, notes = peer_rows(outcomes)
    return BenchResult(NAME, rows, notes, {"outcomes": outcomes})


if __name__ == "__main__":
    sys.exit(standalone(NAME, run, __doc__ or NAME))
