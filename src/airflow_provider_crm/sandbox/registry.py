"""Which vendor emulators exist, under which URL prefix, with which default token.

Adding a vendor = writing one module with a :class:`VendorApp` subclass and listing it here.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_crm.sandbox.base import VendorApp
from airflow_provider_crm.sandbox.hubspot import HubSpotApp
from airflow_provider_crm.sandbox.kaiten import KaitenApp
from airflow_provider_crm.sandbox.kustomer import KustomerApp
from airflow_provider_crm.sandbox.microbase import MicroBaseApp

_EMULATORS: dict[str, type[VendorApp]] = {cls.name: cls for cls in (KustomerApp, KaitenApp, MicroBaseApp, HubSpotApp)}

VENDORS: tuple[str, ...] = tuple(_EMULATORS)

DEFAULT_TOKENS: dict[str, str] = {vendor: app.default_token for vendor, app in _EMULATORS.items()}


def build_apps(tokens: Mapping[str, str] | None = None) -> dict[str, VendorApp]:
    """One fresh app per vendor, using ``tokens`` to override default tokens."""
    tokens = dict(tokens or {})
    unknown = sorted(set(tokens) - set(VENDORS))
    if unknown:
        raise ValueError(f"unknown vendor(s) in tokens: {', '.join(unknown)}; expected {VENDORS}")
    return {vendor: emulator(tokens.get(vendor)) for vendor, emulator in _EMULATORS.items()}
