"""Which vendor emulators exist, under which URL prefix, with which default token.

Adding a vendor = writing its package under ``sandbox/vendors`` (a :class:`VendorApp` subclass in
``app.py``) and listing the app here.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_crm.sandbox.common.vendor_app import VendorApp
from airflow_provider_crm.sandbox.vendors.hubspot.app import HubSpotApp
from airflow_provider_crm.sandbox.vendors.kaiten.app import KaitenApp
from airflow_provider_crm.sandbox.vendors.kustomer.app import KustomerApp
from airflow_provider_crm.sandbox.vendors.microbase.app import MicroBaseApp

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
