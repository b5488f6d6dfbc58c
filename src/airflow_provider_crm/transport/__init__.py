"""Shared HTTP transport: session, timeouts, retries, path escaping and URL checks."""

from airflow_provider_crm.transport.client import BearerAuth, HttpTransport, Timeouts
from airflow_provider_crm.transport.paths import Raw, api_path, escape_segment
from airflow_provider_crm.transport.rules import Disposition, Problem, VendorRules, json_or_none, require_json
from airflow_provider_crm.transport.urls import normalise_base_url
from airflow_provider_crm.transport.waits import RetrySettings

__all__ = [
    "BearerAuth",
    "Disposition",
    "HttpTransport",
    "Problem",
    "Raw",
    "RetrySettings",
    "Timeouts",
    "VendorRules",
    "api_path",
    "escape_segment",
    "json_or_none",
    "normalise_base_url",
    "require_json",
]
