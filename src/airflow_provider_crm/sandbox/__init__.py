"""Stateful local emulators of the vendor HTTP APIs, for tests, demos and DAG development.

One loopback HTTP server serves every vendor under its own prefix (``/kustomer``, ``/kaiten``,
``/microbase``, ``/hubspot``; any other prefix answers 404). It keeps
what was written, journals what arrived (credentials redacted), and can be told to misbehave:
rate limits, 5xx, slow answers, connections dropped before or after a write is stored, mangled
bodies, or all of these at random in a seeded, reproducible mix (chaos mode).

In-process (standard library only, no Airflow import)::

    with Sandbox() as sandbox:
        base_url, token = sandbox.base_url("kustomer"), sandbox.token("kustomer")
        sandbox.inject("kustomer", RateLimit(retry_after=0.1))
        ...  # run the code under test against base_url
        assert sandbox.state("kustomer").kobjects("orders")
        assert [entry.status for entry in sandbox.writes("kustomer")] == [429, 201]

        sandbox.chaos("kustomer", Chaos(seed=7, rate=0.1, slow_seconds=0.5))  # ~10% of requests faulted
        ...
        print(sandbox.chaos_stats("kustomer"))  # {"rate_limit": 12, "drop_after_store": 9, ...}

As pytest fixtures: ``pytest_plugins = ["airflow_provider_crm.sandbox.pytest_plugin"]`` gives
``crm_sandbox`` (per test) and ``crm_sandbox_session``, and ``crm_airflow``, which runs your DAG
files in real Airflow against the sandbox and fails the test when a task fails (docs/sandbox.md).

As a server: ``airflow-crm-sandbox --port 8080`` (or ``python -m airflow_provider_crm.sandbox``),
driven from other processes through ``/_sandbox/health``, ``/_sandbox/journal``,
``/_sandbox/state/<vendor>``, ``POST /_sandbox/reset``, ``POST /_sandbox/faults/<vendor>``
(body like ``{"kind": "rate_limit", "count": 2, "retry_after": 1}``) and
``GET|POST /_sandbox/config/<vendor>`` and ``GET|POST|DELETE /_sandbox/chaos/<vendor>`` (body like
``{"seed": 7, "rate": 0.1, "mix": {"rate_limit": 2, "slow": 1}}``).

Layout: each vendor has one home, ``sandbox/vendors/<vendor>/`` (``app``, ``state``,
``validation``, ``errors``, plus what only that vendor needs); what vendors share is in
``sandbox/common/``; the server, engine, control API, journal, faults and chaos sit at the top.
The emulators deliberately keep their own copy of each vendor's rules and limits instead of
importing the client's models: they are our model of the vendor, checked against the vendor's
documentation and samples, so a test against them checks the client against the vendor, not
against itself.
"""

from airflow_provider_crm.sandbox.chaos import CHAOS_KINDS, Chaos, ChaosDecision, chaos_from_dict
from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.faults import (
    DropAfterStore,
    DropBeforeStore,
    Fault,
    GatewayPage,
    HttpStatus,
    Latency,
    MangledJson,
    OperationFailure,
    RateLimit,
    ServerError,
    fault_from_dict,
)
from airflow_provider_crm.sandbox.journal import JournalEntry
from airflow_provider_crm.sandbox.messages import SandboxRequest, SandboxResponse
from airflow_provider_crm.sandbox.registry import DEFAULT_TOKENS, VENDORS
from airflow_provider_crm.sandbox.server import Sandbox
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp
from airflow_provider_crm.sandbox.vendors.hubspot.state import HubSpotState
from airflow_provider_crm.sandbox.vendors.kaiten.app import KaitenApp
from airflow_provider_crm.sandbox.vendors.kaiten.state import KaitenState
from airflow_provider_crm.sandbox.vendors.kustomer.app import KustomerApp
from airflow_provider_crm.sandbox.vendors.kustomer.state import KustomerState
from airflow_provider_crm.sandbox.vendors.microbase.app import MicroBaseApp
from airflow_provider_crm.sandbox.vendors.microbase.state import MicroBaseState

__all__ = [
    "CHAOS_KINDS",
    "DEFAULT_TOKENS",
    "VENDORS",
    "Chaos",
    "ChaosDecision",
    "DropAfterStore",
    "DropBeforeStore",
    "Fault",
    "GatewayPage",
    "HttpStatus",
    "HubSpotApp",
    "HubSpotState",
    "JournalEntry",
    "KaitenApp",
    "KaitenState",
    "KustomerApp",
    "KustomerState",
    "Latency",
    "MangledJson",
    "MicroBaseApp",
    "MicroBaseState",
    "OperationFailure",
    "RateLimit",
    "Sandbox",
    "SandboxRequest",
    "SandboxResponse",
    "ServerError",
    "VendorApp",
    "chaos_from_dict",
    "fault_from_dict",
]
