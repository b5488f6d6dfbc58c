"""Push many records per vendor through the bulk operators while the sandbox injects chaos, then
check that nothing was lost, duplicated or left unexplained.

Lost records are read from the sandbox's state and our ledger. Duplicates are counted from what
the client sent (the sandbox journal), not from what the server holds: the sandbox keeps external
ids, slugs and unique properties unique, so a client that sends a create twice is refused the
second copy and the store never shows it. A create sent again after one that may have been applied
is a duplicate unless a lookup of the same key went out in between and did not find the record.

Kustomer runs one request per record (``kustomer_mode="per_record"``) or through bulk jobs
(``"bulk_job"``: chaos on the submits, the batch reads and the lookups that settle a lost submit).

Used by the test suite (1,000 records per vendor) and by ``benchmarks/soak.py`` (10,000).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_crm.operators.bulk import (
    HubSpotBulkUpsertOrdersOperator,
    KaitenBulkUpdateCustomersOperator,
    KustomerBulkCreateKObjectsOperator,
    MicroBaseBulkUpdateCustomersOperator,
)
from airflow_provider_crm.sandbox import Chaos, JournalEntry, Sandbox

VENDORS = ("kustomer", "kaiten", "microbase", "hubspot")
READ_TIMEOUT = 0.5
SLOW_SECONDS = 0.8
JOURNAL_PER_RECORD = 6
"""Journal room per record: every request must stay in the journal to be counted (runs use about 2)."""
UNIQUE_ORDER_PROPERTY = "hs_external_order_id"
SETTLE_TIMEOUT = SLOW_SECONDS + 60.0
"""Bound on waiting for requests still in the server after the run (slow ones take ``SLOW_SECONDS``)."""
SETTLE_POLL_SECONDS = 0.05


@dataclass
class SuiteResult:
    vendor: str
    records: int
    stored_ok: int
    rejected_with_reason: int
    lost: int
    duplicates: int
    """Creates sent again with no lookup in between, or after a lookup had found the record."""
    creates_sent: int
    faults: dict[str, int]
    requests: int
    elapsed_s: float

    def as_row(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "records": self.records,
            "written": self.stored_ok,
            "rejected (with reason)": self.rejected_with_reason,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "creates sent": self.creates_sent,
            "faulted requests": sum(self.faults.values()),
            "requests": self.requests,
            "seconds": round(self.elapsed_s, 1),
        }


def _connect(sandbox: Sandbox, vendor: str) -> None:
    conn = sandbox.airflow_connection(vendor) | {"extra": {"read_timeout": READ_TIMEOUT, "max_attempts": 8}}
    os.environ[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(conn)


def _seed_and_build(
    sandbox: Sandbox, vendor: str, n: int, out: Path, kustomer_mode: str = "per_record"
) -> tuple[Any, list[str]]:
    """Seed what updates need, and build the operator and the keys of its records."""
    common = {
        "task_id": f"fault_suite_{vendor}",
        "ledger_path": str(out / f"{vendor}-ledger.jsonl"),
        "dead_letter_path": str(out / f"{vendor}-dead.jsonl"),
        "on_record_error": "warn",
        "max_reject_ratio": 0.01,
        "max_workers": 8,
        "rate_limit": 0,
    }
    keys = [f"{vendor[:2]}-{i:06d}" for i in range(n)]
    if vendor == "kustomer":
        records = [{"external_id": k, "title": f"Order {k}", "custom": {"seqNum": i}} for i, k in enumerate(keys)]
        # Duplicates are counted from single creates and bulk create items alike (see _creates).
        jobs = {"poll_interval": 0.05} if kustomer_mode == "bulk_job" else {}
        op = KustomerBulkCreateKObjectsOperator(
            klass_name="orders", records=records, mode=kustomer_mode, **jobs, **common
        )
        return op, keys
    if vendor == "kaiten":
        app = sandbox.app("kaiten")
        for k in keys:
            app.seed(k, f"Customer {k}")
        records = [{"slug": k, "external_customer_id": f"crm-{k}"} for k in keys]
        return KaitenBulkUpdateCustomersOperator(records=records, **common), keys
    if vendor == "microbase":
        app = sandbox.app("microbase")
        for k in keys:
            app.seed(id=k, email=f"{k}@example.com")
        records = [{"id": k, "last_name": f"Name {k}", "tags": ["synced"]} for k in keys]
        return MicroBaseBulkUpdateCustomersOperator(records=records, **common), keys
    records = [{"id": k, "properties": {"hs_order_name": f"Order {k}"}} for k in keys]
    # Batches of 10, so the batch endpoint sees enough requests for the fault rate to bite.
    op = HubSpotBulkUpsertOrdersOperator(id_property="hs_external_order_id", records=records, batch_size=10, **common)
    return op, keys


def _stored(sandbox: Sandbox, vendor: str) -> Counter[str]:
    """How many times each key holds the value we wrote (more than once = a duplicate)."""
    state = sandbox.state(vendor)
    if vendor == "kustomer":
        return Counter(o["externalId"] for o in state.kobjects("orders") if o["custom"].get("seqNum") is not None)
    if vendor == "kaiten":
        return Counter(c["slug"] for c in state.customers() if c["externalCustomerId"] == f"crm-{c['slug']}")
    if vendor == "microbase":
        return Counter(c["id"] for c in state.customers() if c.get("lastName") == f"Name {c['id']}")
    return Counter(
        o["properties"].get("hs_external_order_id")
        for o in state.orders()
        if o["properties"].get("hs_order_name") == f"Order {o['properties'].get('hs_external_order_id')}"
    )


def _creates(vendor: str, entry: JournalEntry) -> list[str]:
    """Keys of the records a request asks the vendor to create (empty for reads and keyed writes)."""
    body, segments = entry.body if isinstance(entry.body, dict) else {}, entry.segments
    if entry.method != "POST" or not segments:
        return []
    if vendor == "kustomer" and segments[-2:] == ("klasses", "orders"):
        return [str(body.get("externalId"))]
    if vendor == "kustomer" and segments[-3:] == ("klasses", "orders", "bulk") and isinstance(entry.body, list):
        return [str(item.get("externalId")) for item in entry.body if isinstance(item, dict)]
    if vendor == "kaiten" and segments[-1] == "customers":
        return [str(body.get("slug"))]
    if vendor == "microbase" and segments[-1] == "customer.create":
        return [str(body.get("email", "")).partition("@")[0]]
    if vendor == "hubspot" and (segments[-1] == "orders" or segments[-2:] == ("batch", "create")):
        inputs = body.get("inputs") if segments[-1] == "create" else [body]
        return [str((item.get("properties") or {}).get(UNIQUE_ORDER_PROPERTY)) for item in inputs or []]
    return []


def _lookups(vendor: str, entry: JournalEntry) -> list[str]:
    """Keys of the records a request looks up."""
    body, segments = entry.body if isinstance(entry.body, dict) else {}, entry.segments
    if vendor == "kustomer" and entry.method == "GET" and segments[-1].startswith("externalId="):
        return [segments[-1].removeprefix("externalId=")]
    if vendor in ("kaiten", "hubspot") and entry.method == "GET" and len(segments) > 1:
        return [segments[-1]] if segments[-2] in ("customers", "orders") else []
    if vendor == "microbase" and entry.method == "POST" and segments[-1] == "customer.info":
        return [str(body.get("id"))]
    if vendor == "hubspot" and entry.method == "POST" and segments[-2:] == ("batch", "read"):
        return [str(item.get("id")) for item in body.get("inputs") or []]
    return []


def _seen_as_not_applied(entry: JournalEntry) -> bool:
    """Whether the client saw an answer saying the request was not acted on (so resending is safe)."""
    return entry.status in (408, 429) and "slow" not in (entry.fault or "")


def count_duplicates(vendor: str, entries: Iterable[JournalEntry]) -> tuple[int, int]:
    """``(creates sent, duplicates)`` from the journal, in arrival order.

    A create is a duplicate when it repeats an earlier create of the same key that may have been
    applied (anything but a 408/429 the client received) with no lookup of that key in between,
    or when a lookup in between answered that the record exists.
    """
    creates = duplicates = 0
    unsettled: set[str] = set()
    checked: set[str] = set()
    found: set[str] = set()
    for entry in entries:
        for key in _lookups(vendor, entry):
            checked.add(key)
            if entry.status == 200 and entry.fault is None:
                found.add(key)
        for key in _creates(vendor, entry):
            creates += 1
            if key in found or (key in unsettled and key not in checked):
                duplicates += 1
            checked.discard(key)
            if _seen_as_not_applied(entry):
                unsettled.discard(key)
            else:
                unsettled.add(key)
    return creates, duplicates


def _chaos_faulted(entry: JournalEntry) -> bool:
    return any(label.startswith("chaos:") for label in (entry.fault or "").split(","))


def wait_for_faulted_requests(
    sandbox: Sandbox, vendor: str, faulted: int, *, journal_size: int | None = None, timeout: float = SETTLE_TIMEOUT
) -> None:
    """Wait until each of the ``faulted`` requests chaos faulted is journaled, i.e. has been handled.

    A slow request outlives the client's read timeout: the client has moved on while the server
    still sleeps, then stores the write and journals it. Reading the state or the journal before
    then would count its record as lost, or miss a create the client sent. A full journal (of
    ``journal_size`` entries) ends the wait: the caller reports it.
    """
    deadline = time.monotonic() + timeout
    while True:
        journal = sandbox.journal(vendor)
        landed = sum(1 for entry in journal if _chaos_faulted(entry))
        if landed >= faulted or (journal_size is not None and len(journal) >= journal_size):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{vendor}: {landed} of {faulted} faulted requests journaled after {timeout} s")
        time.sleep(SETTLE_POLL_SECONDS)


def run_fault_suite(
    vendor: str, records: int, *, seed: int = 7, rate: float = 0.1, kustomer_mode: str = "per_record"
) -> SuiteResult:
    """One vendor, ``records`` records, ``rate`` of its requests faulted; figures from state, ledger and journal.

    ``kustomer_mode`` is the Kustomer operator's ``mode`` (ignored for the other vendors).
    """
    journal_size = records * JOURNAL_PER_RECORD + 1000
    with Sandbox(journal_size=journal_size) as sandbox, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _connect(sandbox, vendor)
        operator, keys = _seed_and_build(sandbox, vendor, records, out, kustomer_mode)
        sandbox.chaos(vendor, Chaos(seed=seed, rate=rate, slow_seconds=SLOW_SECONDS))
        started = time.monotonic()
        try:
            operator.execute({})
        finally:
            elapsed = time.monotonic() - started
            sandbox.chaos(vendor, None)  # no more draws; the counters stay readable
            faults = dict(sandbox.chaos_stats(vendor))
            requests = sandbox.chaos_requests(vendor)
            wait_for_faulted_requests(sandbox, vendor, sum(faults.values()), journal_size=journal_size)
        journal = sandbox.journal(vendor)
        if len(journal) >= journal_size:
            raise RuntimeError(f"{vendor}: the journal filled up ({journal_size}); raise JOURNAL_PER_RECORD")
        creates_sent, duplicates = count_duplicates(vendor, journal)
        stored = _stored(sandbox, vendor)
        ledger = [json.loads(line) for line in (out / f"{vendor}-ledger.jsonl").read_text().splitlines()]
        rejected = {line["key"] for line in ledger if line["action"] == "rejected" and line["error_code"]}
        lost = [k for k in keys if stored[k] == 0 and k not in rejected]
        return SuiteResult(
            vendor="kustomer (bulk jobs)" if vendor == "kustomer" and kustomer_mode == "bulk_job" else vendor,
            records=records,
            stored_ok=sum(1 for k in keys if stored[k] >= 1),
            rejected_with_reason=len(rejected),
            lost=len(lost),
            duplicates=duplicates + sum(count - 1 for count in stored.values() if count > 1),
            creates_sent=creates_sent,
            faults={kind: count for kind, count in faults.items() if count},
            requests=requests,
            elapsed_s=elapsed,
        )
