"""Which vendor emulators exist, under which URL prefix, with which default token.

Adding a vendor = writing one module with a :class:`VendorApp` subclass and listing the class
in ``_EMULATORS`` (it then replaces the placeholder of the same name).
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_crm.sandbox.base import VendorApp
from airflow_provider_crm.sandbox.kaiten import KaitenApp
from airflow_provider_crm.sandbox.kustomer import KustomerApp
from airflow_provider_crm.sandbox.microbase import MicroBaseApp
from airflow_provider_crm.sandbox.placeholder import PlaceholderApp

VENDORS: tuple[str, ...] = ("kustomer", "kaiten", "microbase", "hubspot")

_EMULATORS: dict[str, type[VendorApp]] = {cls.name: cls for cls in (KustomerApp, KaitenApp, MicroBaseApp)}

DEFAULT_TOKENS: dict[str, str] = {
    vendor: _EMULATORS[vendor].default_token if vendor in _EMULATORS else f"sandbox-{vendor}-token-0123456789"
    for vendor in VENDORS
}


def build_apps(tokens: Mapping[str, str] | None = None) -> dict[str, VendorApp]:
    """One fresh app per vendor, using ``tokens`` to override default tokens."""
    tokens = dict(tokens or {})
    unknown = sorted(set(tokens) - set(VENDORS))
    if unknown:
        raise ValueError(f"unknown vendor(s) in tokens: {', '.join(unknown)}; expected {VENDORS}")
    apps: dict[str, VendorApp] = {}
    for vendor in VENDORS:
        token = tokens.get(vendor)
        emulator = _EMULATORS.get(vendor)
        if emulator is not None:
            apps[vendor] = emulator(token)
        else:
            apps[vendor] = PlaceholderApp(vendor, DEFAULT_TOKENS[vendor], token)
    return apps
