"""Reading the credential of an ``Authorization: Bearer <token>`` header, as every vendor does."""

from __future__ import annotations

from airflow_provider_crm.sandbox.messages import SandboxRequest


def bearer_token(request: SandboxRequest) -> str | None:
    """The bearer credential, or ``None`` for a missing header, another scheme or an empty token."""
    scheme, _, credential = (request.header("Authorization") or "").strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None
