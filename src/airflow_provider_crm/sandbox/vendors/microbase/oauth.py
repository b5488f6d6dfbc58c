"""Pieces of MicroBase's OAuth service: client-credential parsing and token minting.

The real service only issues client-credential JWTs (HS256, signed with the shared
``token:secretKey``, default ``micro-base``). The emulator mints the same kind, so a client that
peeks into the token sees a plausible one, but it accepts a token only if it issued it and the
token has not expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from typing import Any

DEFAULT_SECRET_KEY = "micro-base"


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an ``Authorization: Basic`` header, else ``None``."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, secret = decoded.partition(":")
    return (client_id, secret) if separator else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def mint_jwt(claims: dict[str, Any], secret: str = DEFAULT_SECRET_KEY) -> str:
    """An HS256 JSON Web Token carrying ``claims``."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def expires_in(ttl: float) -> int | float:
    """``expires_in`` for the token answer: whole seconds, or the fraction a fast test configured."""
    return int(ttl) if float(ttl).is_integer() else ttl


def claims_for(client_id: str, scope: str, issued_at: float, ttl: float, token_id: str) -> dict[str, Any]:
    """The claims of a client-credential token."""
    return {
        "sub": client_id,
        "scope": scope,
        "iat": int(issued_at),
        "exp": math.ceil(issued_at + ttl),
        "jti": token_id,
    }
