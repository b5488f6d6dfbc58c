"""Kaiten customer request rules, from the vendor's OpenAPI contract.

Request bodies are ``additionalProperties: false``; ``name`` has ``minLength: 1``; ``slug`` is
2-100 characters of ``^[a-z0-9][a-z0-9-]*[a-z0-9]$``; ``domain`` is a lower-case host name with
at least one dot and, unlike ``externalCustomerId``, refuses an explicit ``null``. Messages are
worded like the vendor's validator ("expected string", "unexpected property"), and a missing
required property is reported at its parent's location (``body``), as the vendor's server notes
(github.com/kaitencloud/kaiten ``api/internal/infrastructure/http/huma/schema_codes.go``).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

from airflow_provider_crm.sandbox.vendors.kaiten.errors import ErrorDetail

SLUG_PATTERN = "^[a-z0-9][a-z0-9-]*[a-z0-9]$"
DOMAIN_PATTERN = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$"
SLUG_MIN, SLUG_MAX = 2, 100

DEFAULT_LIMIT, MAX_LIMIT = 50, 200

CREATE_FIELDS = frozenset({"name", "slug", "externalCustomerId", "domain"})
# PUT takes the Customer schema's writable fields; slug and integrations must match what is stored.
REPLACE_FIELDS = CREATE_FIELDS | {"integrations"}


def _check_string(location: str, value: Any, *, pattern: str) -> list[ErrorDetail]:
    if not isinstance(value, str):
        return [ErrorDetail(location, "expected string", value)]
    # fullmatch on the pattern without its anchors: re's "$" also matches before a final newline.
    if re.fullmatch(pattern[1:-1], value) is None:
        return [ErrorDetail(location, f"expected string to match pattern {pattern}", value)]
    return []


def check_slug(value: Any, location: str = "body.slug") -> list[ErrorDetail]:
    """Problems with a slug value."""
    if not isinstance(value, str):
        return [ErrorDetail(location, "expected string", value)]
    if len(value) < SLUG_MIN:
        return [ErrorDetail(location, f"expected length >= {SLUG_MIN}", value)]
    if len(value) > SLUG_MAX:
        return [ErrorDetail(location, f"expected length <= {SLUG_MAX}", value)]
    return _check_string(location, value, pattern=SLUG_PATTERN)


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> list[ErrorDetail]:
    errors = [
        ErrorDetail(f"body.{key}", "unexpected property", value) for key, value in body.items() if key not in allowed
    ]
    if "name" not in body:
        # Reported at the parent's location, naming the property (as Kaiten's validator does).
        errors.append(ErrorDetail("body", "expected required property name to be present"))
    elif not isinstance(body["name"], str):
        errors.append(ErrorDetail("body.name", "expected string", body["name"]))
    elif len(body["name"]) < 1:
        errors.append(ErrorDetail("body.name", "expected length >= 1", body["name"]))
    if "slug" in body:
        errors.extend(check_slug(body["slug"]))
    external_id = body.get("externalCustomerId")
    if external_id is not None and not isinstance(external_id, str):
        errors.append(ErrorDetail("body.externalCustomerId", "expected string or null", external_id))
    if "domain" in body:
        errors.extend(_check_string("body.domain", body["domain"], pattern=DOMAIN_PATTERN))
    if "integrations" in body and "integrations" in allowed and not isinstance(body["integrations"], dict):
        errors.append(ErrorDetail("body.integrations", "expected object", body["integrations"]))
    return errors


def validate_create(body: Mapping[str, Any]) -> list[ErrorDetail]:
    """Problems with a ``POST /customers`` body."""
    return _check_fields(body, CREATE_FIELDS)


def validate_replace(body: Mapping[str, Any]) -> list[ErrorDetail]:
    """Problems with a ``PUT /customers/{slug}`` body, before comparing it with the stored record."""
    return _check_fields(body, REPLACE_FIELDS)


def parse_limit(raw: str | None) -> int | ErrorDetail:
    """The page size from ``?limit=`` (absent or empty means the default)."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        return ErrorDetail("query.limit", "expected integer", raw)
    if limit < 1:
        return ErrorDetail("query.limit", "expected number >= 1", limit)
    if limit > MAX_LIMIT:
        return ErrorDetail("query.limit", f"expected number <= {MAX_LIMIT}", limit)
    return limit


def slugify(name: str) -> str:
    """A valid slug derived from a name (the server generates one when a create omits it)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:SLUG_MAX].strip("-")
    if len(slug) < SLUG_MIN:
        slug = f"customer-{uuid.uuid4().hex[:8]}"
    return slug
