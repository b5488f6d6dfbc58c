"""The one HTTP client every hook uses: a pooled session, timeouts and safe retries."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_crm import __version__
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmConnectionError,
    CrmError,
    CrmOutcomeUnknownError,
    CrmServerError,
    excerpt,
)
from airflow_provider_crm.transport.limiter import RateLimiter
from airflow_provider_crm.transport.rules import Disposition, VendorRules, json_or_none
from airflow_provider_crm.transport.waits import RetrySettings, backoff_delay

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Bodies larger than this are cut off with an error instead of filling the worker's memory."""
USER_AGENT = f"airflow-provider-crm/{__version__}"

TokenSource = Callable[[], str]
Reconcile = Callable[[], "requests.Response | None"]


@dataclass(frozen=True)
class Timeouts:
    """Connect and read timeouts in seconds; requests' default of none can hang a worker."""

    connect: float = 10.0
    read: float = 30.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)


class BearerAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer`` from a callable, so refreshed tokens are picked up."""

    def __init__(self, token_source: TokenSource) -> None:
        self._token_source = token_source

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token_source()}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (urllib3 nests the real cause several levels deep)."""
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            nested = getattr(current, attr, None)
            if isinstance(nested, BaseException):
                stack.append(nested)
    return seen


def request_never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    return any(isinstance(e, (NewConnectionError, NameResolutionError)) for e in _chain(exc))


def _describe_network_error(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no response before the read timeout"
    if request_never_sent(exc):
        return "could not connect"
    return "connection lost before a response arrived"


@dataclass
class HttpTransport:
    """Sends requests for one hook over one reused ``requests.Session``.

    Retries follow the vendor's :class:`VendorRules`: a request the server refused without
    acting on it (429, 408, or never sent) is resent for any method; a request whose outcome
    is unknown (5xx, connection lost after sending) is resent only when it is idempotent, or
    after ``reconcile`` has checked that a non-idempotent write did not go through.
    """

    base_url: str
    rules: VendorRules
    token_source: TokenSource | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetrySettings = field(default_factory=RetrySettings)
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    pool_size: int = 16
    max_response_bytes: int = MAX_RESPONSE_BYTES
    limiter: RateLimiter | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    session: requests.Session = field(init=False, repr=False)
    _not_before: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.verify = self.verify
        if self.proxies:
            self.session.proxies.update(self.proxies)
        if self.token_source is not None:
            self.session.auth = BearerAuth(self.token_source)

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        reconcile: Reconcile | None = None,
        auth: requests.auth.AuthBase | None = None,
        expect_json: bool = True,
    ) -> requests.Response:
        """Send one logical request, retrying within the configured bounds.

        ``path`` must already be built with :func:`~airflow_provider_crm.transport.paths.api_path`.
        ``reconcile`` is called after an unknown outcome of a non-idempotent write; it returns
        the stored record's response when the write went through, else ``None``. With
        ``expect_json``, a success whose body is not valid JSON (cut off or mangled by a proxy)
        counts as an unknown outcome too: the write may have been applied.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            failure: CrmError
            self._hold_back()
            sent_at = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    json=json,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self.timeouts.as_tuple(),
                    auth=auth,
                    stream=True,
                )
                self._read_capped(response)
            except requests.RequestException as exc:
                sent = not request_never_sent(exc)
                failure = CrmConnectionError(
                    f"{method} {path}: {_describe_network_error(exc)}", vendor=self.rules.vendor, sent=sent
                )
                failure.__cause__ = exc
                disposition = Disposition.MAYBE_APPLIED if sent else Disposition.NOT_APPLIED
                wait = backoff_delay(attempt, self.retry, self.rng)
            else:
                self._note_pause(self.rules.pause_after(response), sent_at)
                if self.limiter is not None and (advertised := self.rules.advertised_rate(response)):
                    self.limiter.cap(advertised)
                error = self.rules.error_for(response)
                garbled = self._garbled(response) if error is None and expect_json else None
                if error is None and garbled is None:
                    if self.limiter is not None:
                        self.limiter.succeeded()
                    return response
                error = error or garbled
                assert error is not None
                failure = error
                disposition = Disposition.MAYBE_APPLIED if garbled else self.rules.disposition(error)
                hinted = self.rules.retry_wait(error)
                wait = backoff_delay(attempt, self.retry, self.rng) if hinted is None else hinted
                wait = min(wait, self.retry.max_single_wait)
                if error.status == 429 and self.limiter is not None:
                    self.limiter.throttle(wait)

            if disposition is Disposition.FINAL:
                raise failure
            exhausted = attempt >= self.retry.max_attempts or waited + wait > self.retry.max_total_wait
            unsafe = disposition is Disposition.MAYBE_APPLIED and not idempotent
            if unsafe and reconcile is None:
                raise CrmOutcomeUnknownError(
                    f"{method} {path} failed after it was sent ({failure}); the record may or may not "
                    "exist, so it was not sent again. Check the vendor before retrying.",
                    vendor=self.rules.vendor,
                    cause=failure,
                ) from failure
            if exhausted:
                if unsafe and reconcile is not None and (found := reconcile()) is not None:
                    return found
                raise failure
            self._log_retry(method, path, failure, attempt, wait)
            self.sleep(wait)
            waited += wait
            if unsafe and reconcile is not None:
                found = reconcile()
                if found is not None:
                    log.info("%s %s: the earlier attempt went through; using the stored record", method, path)
                    return found

    def _garbled(self, response: requests.Response) -> CrmApiError | None:
        """A 2xx answer that should carry JSON but carries something unreadable."""
        if response.status_code == 204 or json_or_none(response) is not None or not response.content.strip():
            return None
        return CrmServerError(
            "the response body is not valid JSON (truncated or mangled); the request may have been applied",
            vendor=self.rules.vendor,
            status=response.status_code,
            code="invalid_response_body",
            body_excerpt=excerpt(response.text),
        )

    def _read_capped(self, response: requests.Response) -> None:
        """Read the body, refusing one longer than :attr:`max_response_bytes` (or endless)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            response.close()
            raise self._oversized(response)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=64 * 1024):
            size += len(chunk)
            if size > self.max_response_bytes:
                response.close()
                raise self._oversized(response)
            chunks.append(chunk)
        response._content = b"".join(chunks)
        response._content_consumed = True  # type: ignore[attr-defined]

    def _oversized(self, response: requests.Response) -> CrmApiError:
        return CrmApiError(
            f"response body exceeds the {self.max_response_bytes} byte limit; refusing to read it",
            vendor=self.rules.vendor,
            status=response.status_code,
        )

    def _note_pause(self, pause: float, sent_at: float) -> None:
        """Hold the next request back ``pause`` seconds from when this one was sent."""
        if pause <= 0:
            return
        pause = min(pause, self.retry.max_single_wait)
        if self.limiter is not None:
            self.limiter.pause(pause, since=sent_at)
        else:
            self._not_before = max(self._not_before, sent_at + pause)

    def _hold_back(self) -> None:
        """Slow down before the vendor's limit is hit: the rate limiter, and what headers asked."""
        if self.limiter is not None:
            self.limiter.acquire()
            return
        delay = self._not_before - time.monotonic()
        if delay > 0:
            log.info("%s: rate-limit budget is low; pausing %.2fs", self.rules.vendor, delay)
            self.sleep(delay)

    def _log_retry(self, method: str, path: str, failure: CrmError, attempt: int, wait: float) -> None:
        reason = f"HTTP {failure.status}" if isinstance(failure, CrmApiError) else str(failure)
        log.warning(
            "%s %s %s: %s; retrying in %.2fs (attempt %d of %d)",
            self.rules.vendor,
            method,
            path,
            reason,
            wait,
            attempt + 1,
            self.retry.max_attempts,
        )
