"""The answer shapes a MicroBase deployment produces, layer by layer.

The operation handlers answer HTTP 200 with ``{"ok": true, ...}`` or, for business and
validation errors, ``{"ok": false, "error": "<code>", "data": ...}``; an error without a code
that the operation catches (a database failure) leaves out ``error``. The framework's error
handlers answer 401 ``invalid_token`` and, for anything unhandled, ``{"ok": false, "error":
{...}}`` where ``error`` is an object. Express answers an unknown path with its HTML page, and the
NGINX gateway in front answers 502/503/504 with its own HTML page.
"""

from __future__ import annotations

import html
from typing import Any

from airflow_provider_crm.sandbox.gateway import nginx_error_page
from airflow_provider_crm.sandbox.messages import SandboxResponse, json_response

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
GATEWAY_STATUSES = (502, 503, 504)

CUSTOMER_NOT_FOUND = "customer_not_found"
CUSTOMER_INVALID_EMAIL = "customer_invalid_email"
DUPLICATE_KEY = "duplicate_key"
VALIDATION_ERROR = "validation_error"


def success(**payload: Any) -> SandboxResponse:
    """HTTP 200 ``{"ok": true, **payload}``."""
    return json_response(200, {"ok": True, **payload})


def business_error(code: str, data: Any = None) -> SandboxResponse:
    """HTTP **200** ``{"ok": false, "error": code, "data": data}``: clients must read ``ok``."""
    body: dict[str, Any] = {"ok": False, "error": code}
    if data is not None:
        body["data"] = data
    return json_response(200, body)


def uncoded_error(message: str) -> SandboxResponse:
    """An error with no code, caught by the operation: HTTP 200 ``{"ok": false, "data": message}``.

    The framework's ``genericErrorResponse`` copies ``error.code`` only when there is one and uses
    the error's message as ``data`` (dasanor/microbase:src/modules/utils/index.js@ba350b4); the
    HTTP transport answers 200 unless the error has a ``statusCode`` (src/modules/transports/http.js).
    """
    return json_response(200, {"ok": False, "data": message})


def duplicate_email(email: str) -> SandboxResponse:
    """The unique email index refusing a save, with MongoDB's E11000 message as ``data``."""
    errmsg = f'E11000 duplicate key error index: customers.$email_1 dup key: {{ : "{email}" }}'
    return business_error(DUPLICATE_KEY, errmsg)


def plain_error(status: int, code: str) -> SandboxResponse:
    """``{"ok": false, "error": code}`` with an HTTP status (401 ``invalid_token`` and the like)."""
    return json_response(status, {"ok": False, "error": code})


def framework_error(http_status: int, message: str, /, **fields: Any) -> SandboxResponse:
    """The framework's last-resort handler: ``error`` is an object, the thrown error's message plus
    its own enumerable fields."""
    return json_response(http_status, {"ok": False, "error": {"message": message, **fields}})


def gateway_page(status: int) -> SandboxResponse:
    """NGINX's own error page, as the gateway sends it when the upstream service is missing."""
    return SandboxResponse(status, nginx_error_page(status), content_type="text/html")


def express_not_found(method: str, path: str) -> SandboxResponse:
    """Express's default 404 page for a path no operation serves."""
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
        f"</head>\n<body>\n<pre>Cannot {html.escape(method)} {html.escape(path)}</pre>\n</body>\n</html>\n"
    )
    response = SandboxResponse(404, page, content_type=HTML_CONTENT_TYPE)
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
