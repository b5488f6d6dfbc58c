"""The HubSpot emulator: CRM v3 orders, batch writes, property definitions, rate limits and OAuth refresh."""
