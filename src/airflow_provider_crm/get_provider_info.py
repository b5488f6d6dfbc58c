"""Provider metadata for Airflow's entry point; kept tiny because Airflow loads it on every start."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_crm import __version__
    from airflow_provider_crm.connection_forms import connection_type_entries

    return {
        "package-name": "airflow-provider-crm",
        "name": "CRM (Kustomer, Kaiten, MicroBase, HubSpot)",
        "description": "Write records into Kustomer, Kaiten, MicroBase and HubSpot from Airflow pipelines.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Kustomer",
                "external-doc-url": "https://developer.kustomer.com/",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {
                "integration-name": "Kustomer",
                "python-modules": ["airflow_provider_crm.hooks.kustomer"],
            },
        ],
        "operators": [
            {
                "integration-name": "Kustomer",
                "python-modules": ["airflow_provider_crm.operators.kustomer"],
            },
        ],
        "connection-types": connection_type_entries(),
    }
