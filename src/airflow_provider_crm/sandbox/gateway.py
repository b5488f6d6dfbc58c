"""The HTML page a reverse proxy (NGINX) sends when the service behind it fails or is missing.

Vendors that publish their own gateway pages (HubSpot's Cloudflare, MicroBase's NGINX) render
those; the others fall back to this one, so clients meet a non-JSON error body somewhere.
"""

from __future__ import annotations

from http import HTTPStatus


def status_line(status: int) -> str:
    """``"502 Bad Gateway"``; unknown codes get a generic phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"{status} {phrase}"


def nginx_error_page(status: int) -> str:
    """NGINX's built-in error page for ``status``."""
    line = status_line(status)
    return (
        f"<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n"
        f"<center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
