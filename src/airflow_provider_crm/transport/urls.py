"""Validate the base URL a connection points at."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_crm.errors import CrmConfigurationError


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses, where plain HTTP cannot leak a token."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_base_url(raw: str, *, vendor: str, allow_insecure_http: bool = False) -> str:
    """Return ``scheme://host[:port][/path]`` without a trailing slash.

    A URL without a scheme is taken as https. Plain ``http://`` is refused unless the host is
    loopback or the connection explicitly allows it, because the bearer token would travel in
    clear text.
    """
    text = raw.strip()
    if not text:
        raise CrmConfigurationError(f"{vendor}: the connection has no host / base URL")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"}:
        raise CrmConfigurationError(f"{vendor}: unsupported URL scheme {parts.scheme!r} in the host")
    if not parts.hostname:
        raise CrmConfigurationError(f"{vendor}: the host {raw!r} has no host name")
    if parts.username or parts.password:
        raise CrmConfigurationError(
            f"{vendor}: put credentials in the connection's password field, not in the host URL"
        )
    if parts.query or parts.fragment:
        raise CrmConfigurationError(f"{vendor}: the host URL must not carry a query or fragment")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise CrmConfigurationError(
            f"{vendor}: refusing plain http:// to {parts.hostname} (the token would be sent "
            "unencrypted); use https:// or set the connection extra allow_insecure_http to true"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
