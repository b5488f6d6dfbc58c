"""Provider metadata for Airflow's entry point; kept tiny because Airflow loads it on every start."""

from __future__ import annotations

from typing import Any

# (integration name, documentation URL, module name under hooks/ and operators/)
_INTEGRATIONS = (
    ("Kustomer", "https://developer.kustomer.com/", "kustomer"),
    ("Kaiten", "https://docs.kaiten.sh/", "kaiten"),
    ("MicroBase", "https://github.com/ncornag/microbase", "microbase"),
    ("HubSpot", "https://developers.hubspot.com/docs/api/crm/orders", "hubspot"),
)

# (integration name, module under triggers/): the vendors whose jobs a deferrable operator waits for
_TRIGGERS = (("Kustomer", "kustomer_bulk"),)


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_crm import __version__
    from airflow_provider_crm.connection_forms import connection_type_entries

    return {
        "package-name": "airflow-provider-crm",
        "name": "CRM (Kustomer, Kaiten, MicroBase, HubSpot)",
        "description": "Write records into Kustomer, Kaiten, MicroBase and HubSpot from Airflow pipelines.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": name, "external-doc-url": url, "tags": ["service"]} for name, url, _ in _INTEGRATIONS
        ],
        "hooks": [
            {"integration-name": name, "python-modules": [f"airflow_provider_crm.hooks.{module}"]}
            for name, _, module in _INTEGRATIONS
        ],
        "operators": [
            {
                "integration-name": name,
                "python-modules": [f"airflow_provider_crm.operators.{module}", "airflow_provider_crm.operators.bulk"],
            }
            for name, _, module in _INTEGRATIONS
        ],
        "triggers": [
            {"integration-name": name, "python-modules": [f"airflow_provider_crm.triggers.{module}"]}
            for name, module in _TRIGGERS
        ],
        "extra-links": ["airflow_provider_crm.links.CrmRecordLink"],
        "connection-types": connection_type_entries(),
    }
