"""The records the example DAG expects to find, so it runs against a fresh sandbox."""

from __future__ import annotations

from typing import Any

EXAMPLE_KAITEN_CUSTOMER = "acme-corp"
EXAMPLE_MICROBASE_CUSTOMER = "HkhhuXESl"
EXAMPLE_HUBSPOT_ORDER = "order-1042"


def seed_example(sandbox: Any) -> None:
    """Store the Kaiten customer, MicroBase customer and HubSpot order of ``example_crm_chain``."""
    sandbox.app("kaiten").seed(EXAMPLE_KAITEN_CUSTOMER, "Acme Corp", domain="acme.example")
    sandbox.app("microbase").seed(
        id=EXAMPLE_MICROBASE_CUSTOMER, email="john.doe@acme.example", first_name="John", last_name="Doe"
    )
    sandbox.app("hubspot").seed(
        {
            "hs_order_name": "Order 1042",
            "hs_external_order_id": EXAMPLE_HUBSPOT_ORDER,
            "hs_currency_code": "USD",
        }
    )
