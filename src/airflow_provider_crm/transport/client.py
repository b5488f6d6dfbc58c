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


@dataclass(frozen=True)
class _Call:
    """One logical request: what to send, and whether sending it again is safe."""

    method: str
    path: str
    send: dict[str, Any]
    """Keyword arguments for ``requests.Session.request`` (body, params, headers, auth)."""
    idempotent: bool
    reconcile: Reconcile | None
    expect_json: bool


@dataclass(frozen=True)
class _Failure:
    """A failed attempt: the error to raise, what it means for resending, and the wait before a retry."""

    error: CrmError
    disposition: Disposition
    wait: float


@dataclass
class HttpTransport:
    """Sends requests for one hook over one reused ``requests.Session``.

    Retries follow the vendor's :class:`VendorRules`: a request the server refused without
    acting on it (429, 408, or never sent) is resent for any method; a request whose outcome
    is unknown (5xx, connection lost after sending) is resent only when it is idempotent, or
    after ``reconcile`` has checked that a non-idempotent write did not go through. ``conn_id``
    is the Airflow connection the hook reads; a 401 or 403 says it is the one to fix.
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
    conn_id: str | None = None
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
        call = _Call(
            method=method,
            path=path,
            send={"json": json, "params": params, "data": data, "headers": headers, "auth": auth},
            idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
            reconcile=reconcile,
            expect_json=expect_json,
        )
        return self._run(call)

    def _run(self, call: _Call) -> requests.Response:
        """Attempt ``call`` until it succeeds, fails for good, or the retry budget is spent."""
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(call, attempt)
            if isinstance(outcome, requests.Response):
                return outcome
            found = self._retry_or_raise(call, outcome, attempt, waited)
            if found is not None:
                return found
            waited += outcome.wait

    # -- one attempt ----------------------------------------------------------------------

    def _attempt(self, call: _Call, attempt: int) -> requests.Response | _Failure:
        """Send the request once: the usable response, or what went wrong."""
        self._hold_back()
        sent_at = time.monotonic()
        try:
            response = self._send(call)
        except requests.RequestException as exc:
            return self._network_failure(call, exc, attempt)
        return self._classify(call, response, sent_at, attempt)

    def _send(self, call: _Call) -> requests.Response:
        response = self.session.request(
            call.method, self.url(call.path), **call.send, timeout=self.timeouts.as_tuple(), stream=True
        )
        self._read_capped(response)
        return response

    # -- what the outcome means -----------------------------------------------------------

    def _network_failure(self, call: _Call, exc: requests.RequestException, attempt: int) -> _Failure:
        """No answer: safe to resend when the request never left, unknown outcome otherwise."""
        sent = not request_never_sent(exc)
        error = CrmConnectionError(
            f"{call.method} {call.path}: {_describe_network_error(exc)}", vendor=self.rules.vendor, sent=sent, cause=exc
        )
        disposition = Disposition.MAYBE_APPLIED if sent else Disposition.NOT_APPLIED
        return _Failure(error, disposition, backoff_delay(attempt, self.retry, self.rng))

    def _classify(
        self, call: _Call, response: requests.Response, sent_at: float, attempt: int
    ) -> requests.Response | _Failure:
        """An answer: heed its rate-limit headers, then tell a success from a refusal or a garbled body."""
        self._heed_rate_headers(response, sent_at)
        error = self.rules.error_for(response, conn_id=self.conn_id)
        if error is not None:
            return self._refusal(error, self.rules.disposition(error), attempt)
        garbled = self._garbled(response) if call.expect_json else None
        if garbled is not None:
            return self._refusal(garbled, Disposition.MAYBE_APPLIED, attempt)
        if self.limiter is not None:
            self.limiter.succeeded()
        return response

    def _refusal(self, error: CrmApiError, disposition: Disposition, attempt: int) -> _Failure:
        """The wait the vendor prescribes (else backoff), capped; a 429 also slows the limiter down."""
        hinted = self.rules.retry_wait(error)
        wait = backoff_delay(attempt, self.retry, self.rng) if hinted is None else hinted
        wait = min(wait, self.retry.max_single_wait)
        if error.status == 429 and self.limiter is not None:
            self.limiter.throttle(wait)
        return _Failure(error, disposition, wait)

    # -- retry or not ---------------------------------------------------------------------

    def _retry_or_raise(self, call: _Call, failure: _Failure, attempt: int, waited: float) -> requests.Response | None:
        """Raise, or wait for the next attempt; a record ``reconcile`` found ends the request early."""
        if failure.disposition is Disposition.FINAL:
            raise failure.error
        unsafe = failure.disposition is Disposition.MAYBE_APPLIED and not call.idempotent
        reconcile = call.reconcile if unsafe else None
        if unsafe and reconcile is None:
            raise self._outcome_unknown(call, failure.error) from failure.error
        exhausted = attempt >= self.retry.max_attempts or waited + failure.wait > self.retry.max_total_wait
        if exhausted:
            found = reconcile() if reconcile is not None else None
            if found is None:
                raise failure.error
            return found
        self._log_retry(call.method, call.path, failure.error, attempt, failure.wait)
        self.sleep(failure.wait)
        return self._reconciled(call, reconcile) if reconcile is not None else None

    def _outcome_unknown(self, call: _Call, failure: CrmError) -> CrmOutcomeUnknownError:
        return CrmOutcomeUnknownError(
            f"{call.method} {call.path} failed after it was sent ({failure}); the record may or may not "
            "exist, so it was not sent again. Check the vendor before retrying.",
            vendor=self.rules.vendor,
            cause=failure,
        )

    def _reconciled(self, call: _Call, reconcile: Reconcile) -> requests.Response | None:
        """The stored record when the earlier attempt went through, else ``None`` (send again)."""
        found = reconcile()
        if found is not None:
            log.info("%s %s: the earlier attempt went through; using the stored record", call.method, call.path)
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

    def _heed_rate_headers(self, response: requests.Response, sent_at: float) -> None:
        """Pause, slow down or (when following the server) speed up as the vendor's rate-limit headers say."""
        self._note_pause(self.rules.pause_after(response), sent_at)
        if self.limiter is not None and (advertised := self.rules.advertised_rate(response)) is not None:
            self.limiter.heed_advertised(advertised)

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
