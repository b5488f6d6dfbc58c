"""Connection-form metadata for every connection type, as plain data.

``get_provider_info`` publishes it as ``conn-fields`` / ``ui-field-behaviour`` (read by Airflow
3.2+ without importing any hook), and :mod:`airflow_provider_crm.hooks.forms` turns the same
data into the legacy wtforms widgets that Airflow 3.0/3.1 ask hooks for. Keeping one source means
the two can't drift apart. This module must stay import-free: Airflow loads it on every start.
"""

from __future__ import annotations

from typing import Any

_NUMBER = ["number", "null"]
_STRING = ["string", "null"]
_BOOLEAN = ["boolean", "null"]

COMMON_FIELDS: dict[str, dict[str, Any]] = {
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to wait for a TCP/TLS connection. Default 10.",
        "schema": {"type": _NUMBER, "minimum": 0.1, "default": 10},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for a response once connected. Default 30.",
        "schema": {"type": _NUMBER, "minimum": 0.1, "default": 30},
    },
    "max_attempts": {
        "label": "Max attempts per call",
        "description": "Tries per request, the first included, for retryable failures. Default 5.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20, "default": 5},
    },
    "rate_limit_per_second": {
        "label": "Rate limit (requests/s)",
        "description": "Requests per second for this connection in one worker; empty = the vendor's "
        "documented limit, 0 = no limit. Use an Airflow pool to cap concurrent tasks across workers.",
        "schema": {"type": _NUMBER, "minimum": 0},
    },
    "rate_limit_share": {
        "label": "Share of the advertised rate limit",
        "description": "Without a rate limit above, start at the vendor's documented limit and then use this "
        "share of the limit the vendor's rate-limit headers advertise, following it up and down; the rest "
        "is left for the account's other integrations. Above 0, at most 1. Default 0.9.",
        "schema": {"type": _NUMBER, "exclusiveMinimum": 0, "maximum": 1, "default": 0.9},
    },
    "record_url_template": {
        "label": "Record link template",
        "description": "URL of a record in the vendor's UI for the task's 'Open record' link, with "
        "placeholders such as {id}, {klass}, {slug}, {customer_id}.",
        "schema": {"type": _STRING},
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Leave on. Turn off only for a test server with a self-signed certificate.",
        "schema": {"type": _BOOLEAN, "default": True},
    },
    "allow_insecure_http": {
        "label": "Allow plain http:// to a non-loopback host",
        "description": "Sends the token unencrypted. Only for trusted private networks.",
        "schema": {"type": _BOOLEAN, "default": False},
    },
}

_HIDDEN_DEFAULT = ["login", "port", "schema"]

CONNECTION_TYPES: dict[str, dict[str, Any]] = {
    "kustomer": {
        "hook-class-name": "airflow_provider_crm.hooks.kustomer.KustomerHook",
        "hook-name": "Kustomer",
        "ui-field-behaviour": {
            "hidden-fields": _HIDDEN_DEFAULT,
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://<org>.api.kustomerapp.com (empty: the Region's host)",
                "password": "Kustomer API key (eyJ...)",
            },
        },
        "conn-fields": {
            "region": {
                "label": "Region",
                "description": "Used when Base URL is empty: us, eu or in (India).",
                "schema": {"type": "string", "enum": ["us", "eu", "in"], "default": "us"},
            },
            **COMMON_FIELDS,
        },
    },
    "kaiten": {
        "hook-class-name": "airflow_provider_crm.hooks.kaiten.KaitenHook",
        "hook-name": "Kaiten",
        "ui-field-behaviour": {
            "hidden-fields": _HIDDEN_DEFAULT,
            "relabeling": {"host": "Base URL", "password": "Access token"},
            "placeholders": {
                "host": "https://kaiten.example.com (/api is appended when missing)",
                "password": "ksh_... (a service-account token with write:customers)",
            },
        },
        "conn-fields": dict(COMMON_FIELDS),
    },
    "microbase": {
        "hook-class-name": "airflow_provider_crm.hooks.microbase.MicroBaseHook",
        "hook-name": "MicroBase",
        "ui-field-behaviour": {
            "hidden-fields": ["port", "schema"],
            "relabeling": {
                "host": "Base URL",
                "login": "Client id (client credentials only)",
                "password": "Bearer token, or client secret",
            },
            "placeholders": {
                "host": "http://localhost:3005",
                "login": "leave empty when the password is a bearer token",
                "password": "JWT bearer token, or the client secret when Client id and Token URL are set",
            },
        },
        "conn-fields": {
            "token_url": {
                "label": "Token URL (client credentials)",
                "description": "OAuth token endpoint, e.g. http://localhost:4000/services/oauth/v2/token, or a "
                "path on the same host; set it to use login/password as client credentials.",
                "schema": {"type": _STRING},
            },
            "scope": {
                "label": "Scope (client credentials)",
                "description": "Scope asked for with client credentials. Default api.",
                "schema": {"type": _STRING, "default": "api"},
            },
            **COMMON_FIELDS,
        },
    },
    "hubspot": {
        "hook-class-name": "airflow_provider_crm.hooks.hubspot.HubSpotHook",
        "hook-name": "HubSpot",
        "ui-field-behaviour": {
            "hidden-fields": _HIDDEN_DEFAULT,
            "relabeling": {"host": "API base URL", "password": "Private app token"},
            "placeholders": {
                "host": "https://api.hubapi.com (leave empty)",
                "password": "pat-... (leave empty when using OAuth)",
            },
        },
        "conn-fields": {
            "client_id": {
                "label": "OAuth client id",
                "description": "For OAuth apps: with client secret and refresh token instead of a token.",
                "schema": {"type": _STRING},
            },
            "client_secret": {
                "label": "OAuth client secret",
                "schema": {"type": _STRING, "format": "password"},
            },
            "refresh_token": {
                "label": "OAuth refresh token",
                "schema": {"type": _STRING, "format": "password"},
            },
            "portal_id": {
                "label": "Portal (hub) id",
                "description": "Your HubSpot account id; lets tasks link to the order's record page.",
                "schema": {"type": _STRING},
            },
            **COMMON_FIELDS,
        },
    },
}


def connection_type_entries() -> list[dict[str, Any]]:
    """The ``connection-types`` list of provider info."""
    return [{"connection-type": name, **spec} for name, spec in CONNECTION_TYPES.items()]
