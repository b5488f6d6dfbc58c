"""One error hierarchy for every vendor.

Each API error carries what a caller (or a task retry policy) needs to decide what to do next:
the HTTP status, the vendor's own error code, the request/correlation id and, when the vendor
said so, how long to wait. Messages never carry credentials and bodies are truncated.
"""

from __future__ import annotations

from typing import Any

BODY_EXCERPT_LIMIT = 500


def excerpt(text: str | None, limit: int = BODY_EXCERPT_LIMIT) -> str:
    """Cut a response body down to something safe to put in a message."""
    if not text:
        return ""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


class CrmError(Exception):
    """Base class of every error this provider raises."""


class CrmConfigurationError(CrmError):
    """The Airflow connection is unusable (bad URL, missing token, wrong credential kind)."""


class CrmValidationError(CrmError, ValueError):
    """A record is invalid; raised before anything is sent."""

    def __init__(self, message: str, *, field: str | None = None, record: str | None = None) -> None:
        self.field = field
        self.record = record
        super().__init__(message)


class CrmApiError(CrmError):
    """The vendor answered with an error."""

    connection_hint: str = ""
    """What to fix in the Airflow connection ``conn_id``; said only when the error names a connection."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: Any = None,
        body_excerpt: str = "",
        conn_id: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details
        self.body_excerpt = body_excerpt
        self.message = message
        self.conn_id = conn_id
        super().__init__(self._render())

    @property
    def status_code(self) -> int | None:
        """Alias used by Airflow retry policies and other tooling."""
        return self.status

    def _render(self) -> str:
        parts = [f"{self.vendor}"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        head = " ".join(parts)
        text = f"{head}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:.1f}s)"
        if self.conn_id is not None and self.connection_hint:
            text += " — " + self.connection_hint.format(conn_id=repr(self.conn_id))
        return text


def restated(error: CrmApiError, message: str, cls: type[CrmApiError] | None = None) -> CrmApiError:
    """A new error saying ``message`` (as ``cls``, by default the same class), keeping the vendor's facts.

    Hooks use it to say more than the wire did (which record, what to do) without changing an
    exception that was already raised; raise it ``from error``. The Airflow connection the error
    names is kept, so a restated 401 or 403 still says which connection to fix.
    """
    return (cls or type(error))(
        message,
        vendor=error.vendor,
        status=error.status,
        code=error.code,
        request_id=error.request_id,
        retry_after=error.retry_after,
        details=error.details,
        body_excerpt=error.body_excerpt,
        conn_id=error.conn_id,
    )


class CrmBadRequestError(CrmApiError):
    """400/422: the vendor refused the request as invalid; retrying will not help."""


class CrmAuthenticationError(CrmApiError):
    """401: the token is missing, wrong, expired or issued for another region."""

    connection_hint = "check the credentials in Airflow connection {conn_id}"


class CrmPermissionError(CrmApiError):
    """403: the token lacks a role or scope."""

    connection_hint = "the credentials in Airflow connection {conn_id} lack a role or scope"


class CrmNotFoundError(CrmApiError):
    """404: the record (or the route) does not exist."""


class CrmConflictError(CrmApiError):
    """409: the write clashes with existing data (e.g. a duplicate external id)."""


class CrmRateLimitError(CrmApiError):
    """429: over a rate limit; ``retry_after`` says how long to wait when known."""


class CrmServerError(CrmApiError):
    """5xx: the vendor failed; the request may be retried when it is idempotent."""


class CrmConnectionError(CrmError):
    """The request failed on the network before any response arrived."""

    def __init__(self, message: str, *, vendor: str, sent: bool, cause: BaseException | None = None) -> None:
        self.vendor = vendor
        self.sent = sent
        super().__init__(f"{vendor}: {message}")
        self.__cause__ = cause  # the network library's error, as ``raise ... from cause`` would chain it


class CrmOutcomeUnknownError(CrmError):
    """A write was sent but its outcome is unknown: the record may or may not exist."""

    def __init__(self, message: str, *, vendor: str, cause: Exception | None = None) -> None:
        self.vendor = vendor
        self.cause = cause
        super().__init__(f"{vendor}: {message}")


_STATUS_CLASSES: dict[int, type[CrmApiError]] = {
    400: CrmBadRequestError,
    401: CrmAuthenticationError,
    403: CrmPermissionError,
    404: CrmNotFoundError,
    409: CrmConflictError,
    422: CrmBadRequestError,
    429: CrmRateLimitError,
}


def error_class_for_status(status: int) -> type[CrmApiError]:
    """The most specific error class for an HTTP status."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return CrmServerError
    return CrmApiError
