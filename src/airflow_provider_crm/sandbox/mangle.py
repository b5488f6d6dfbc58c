"""Broken JSON bodies, as a proxy that mangles responses produces them.

Both functions always return bytes that no strict JSON parser accepts, so a client test can rely
on a decode error; they keep as much of the real body as possible so the damage looks plausible.
"""

from __future__ import annotations

FALLBACK_TRUNCATED = b'{"data": {"id": "'
FALLBACK_MALFORMED = b'{"data": undefined}'


def _is_container(payload: bytes) -> bool:
    text = payload.strip()
    return text[:1] in (b"{", b"[") and text[-1:] in (b"}", b"]")


def truncated(payload: bytes) -> bytes:
    """The first half of a JSON object or array (a proper prefix is never valid JSON)."""
    text = payload.strip()
    if not _is_container(text) or len(text) < 2:
        return FALLBACK_TRUNCATED
    return text[: len(text) // 2]


def malformed(payload: bytes) -> bytes:
    """A JSON object or array with a trailing comma before its last closer."""
    text = payload.strip()
    if not _is_container(text):
        return FALLBACK_MALFORMED
    return text[:-1] + b"," + text[-1:]


def mangle(payload: bytes, style: str) -> bytes:
    """Dispatch on ``style`` (``"truncated"`` or ``"malformed"``)."""
    if style == "truncated":
        return truncated(payload)
    if style == "malformed":
        return malformed(payload)
    raise ValueError(f"unknown mangle style {style!r}")
