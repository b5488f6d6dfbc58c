"""Read JSON over HTTP from code that runs on an event loop (a trigger), with the same rules as the hooks.

:class:`~airflow_provider_crm.transport.client.HttpTransport` blocks, which a trigger must never
do: every trigger of the triggerer shares one event loop. This reader sends ``GET`` requests with
``httpx.AsyncClient`` (a dependency of Airflow 3) and reads the answers through the same
:class:`~airflow_provider_crm.transport.rules.VendorRules`, so a poll gets the same typed errors,
token-free messages and waits as a hook's call: a 429 waits as ``Retry-After`` /
``x-ratelimit-reset`` say, a 5xx or a lost connection is retried with backoff (a ``GET`` is safe
to resend), ``x-ratelimit-remaining: 0`` holds the next request back, and requests are spaced by
at least ``min_interval``. Only reads: a write whose answer is lost must not be resent from here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_crm.errors import CrmApiError, CrmConnectionError, CrmError, CrmServerError, excerpt
from airflow_provider_crm.transport.client import MAX_RESPONSE_BYTES, USER_AGENT, Timeouts
from airflow_provider_crm.transport.rules import Disposition, VendorRules, json_or_none
from airflow_provider_crm.transport.waits import RetrySettings, backoff_delay

log = logging.getLogger(__name__)


def as_requests_response(response: httpx.Response, content: bytes) -> requests.Response:
    """The answer as a :class:`requests.Response`, the form :class:`VendorRules` reads.

    :param response: The answer's status line and headers.
    :param content: Its body, already read.
    """
    converted = requests.Response()
    converted.status_code = response.status_code
    converted.headers = CaseInsensitiveDict(dict(response.headers))
    converted.reason = response.reason_phrase
    converted.url = str(response.url)
    converted.encoding = response.encoding
    converted._content = content
    return converted


@dataclass(frozen=True)
class ReadEndpoint:
    """The connection facts a reader needs, read once from the Airflow connection.

    :param base_url: The API's base URL, checked as the hook checks it.
    :param token: The bearer token; registered with the masker by whoever read it, never logged here.
    :param timeouts: Connect and read timeouts.
    :param retry: Attempts per read and bounds on the waits between them.
    :param verify: TLS certificate verification.
    """

    base_url: str
    token: str = field(repr=False)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetrySettings = field(default_factory=RetrySettings)
    verify: bool = True


@dataclass
class AsyncJsonReader:
    """Sends ``GET`` requests for one connection over one pooled ``httpx.AsyncClient``; use ``async with``.

    :param endpoint: Where to read, with which token, timeouts, retries and TLS check.
    :param rules: The vendor's rules: error envelopes, waits, rate-limit headers.
    :param min_interval: Seconds at least between the starts of two requests (0: no spacing).
    :param conn_id: The Airflow connection, named by a 401 or 403.
    """

    endpoint: ReadEndpoint
    rules: VendorRules
    min_interval: float = 0.0
    conn_id: str | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _not_before: float = field(default=0.0, init=False, repr=False)

    async def __aenter__(self) -> AsyncJsonReader:
        endpoint = self.endpoint
        self._client = httpx.AsyncClient(
            base_url=endpoint.base_url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Authorization": f"Bearer {endpoint.token}",
            },
            timeout=httpx.Timeout(endpoint.timeouts.read, connect=endpoint.timeouts.connect),
            verify=endpoint.verify,
            follow_redirects=False,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get_json(self, path: str) -> Any:
        """``GET`` a path and return its JSON body, retrying within the endpoint's ``retry``.

        :param path: Built with :func:`~airflow_provider_crm.transport.paths.api_path`.
        :raises CrmApiError: The vendor's refusal, typed by status (a 429 or 5xx once the retries are spent).
        :raises CrmConnectionError: When no answer came, after the retries.
        """
        retry = self.endpoint.retry
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(path, attempt)
            if not isinstance(outcome, _Failure):
                return outcome.body
            if outcome.disposition is Disposition.FINAL:
                raise outcome.error
            if attempt >= retry.max_attempts or waited + outcome.wait > retry.max_total_wait:
                raise outcome.error
            log.warning(
                "%s GET %s: %s; retrying in %.2fs (attempt %d of %d)",
                self.rules.vendor,
                path,
                _reason(outcome.error),
                outcome.wait,
                attempt + 1,
                retry.max_attempts,
            )
            await self.sleep(outcome.wait)
            waited += outcome.wait

    async def _attempt(self, path: str, attempt: int) -> _Body | _Failure:
        await self._hold_back()
        sent_at = time.monotonic()
        try:
            response = await self._send(path)
        except httpx.TransportError as exc:
            never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            error = CrmConnectionError(
                f"GET {path}: {_describe(exc)}", vendor=self.rules.vendor, sent=not never_sent, cause=exc
            )
            return _Failure(error, Disposition.MAYBE_APPLIED, backoff_delay(attempt, self.endpoint.retry, self.rng))
        pause = self.rules.pause_after(response)
        if pause > 0:
            self._not_before = max(self._not_before, sent_at + min(pause, self.endpoint.retry.max_single_wait))
        refusal = self.rules.error_for(response, conn_id=self.conn_id)
        if refusal is not None:
            hinted = self.rules.retry_wait(refusal)
            wait = backoff_delay(attempt, self.endpoint.retry, self.rng) if hinted is None else hinted
            return _Failure(refusal, self.rules.disposition(refusal), min(wait, self.endpoint.retry.max_single_wait))
        body = json_or_none(response)
        if body is None:
            garbled = CrmServerError(
                "the response body is not valid JSON (empty, truncated or mangled)",
                vendor=self.rules.vendor,
                status=response.status_code,
                code="invalid_response_body",
                body_excerpt=excerpt(response.text),
            )
            return _Failure(garbled, Disposition.MAYBE_APPLIED, backoff_delay(attempt, self.endpoint.retry, self.rng))
        return _Body(body)

    async def _send(self, path: str) -> requests.Response:
        """One ``GET``, its body read up to :attr:`max_response_bytes`."""
        if self._client is None:
            raise RuntimeError("use the reader in `async with` before reading")
        async with self._client.stream("GET", path) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise CrmApiError(
                        f"response body exceeds the {self.max_response_bytes} byte limit; refusing to read it",
                        vendor=self.rules.vendor,
                        status=response.status_code,
                    )
                chunks.append(chunk)
        return as_requests_response(response, b"".join(chunks))

    async def _hold_back(self) -> None:
        """Space requests by :attr:`min_interval`, and heed a pause the last answer's headers asked for."""
        now = time.monotonic()
        delay = self._not_before - now
        if delay > 0:
            await self.sleep(delay)
        self._not_before = max(now, self._not_before) + self.min_interval


@dataclass(frozen=True)
class _Body:
    body: Any


@dataclass(frozen=True)
class _Failure:
    """A failed attempt: the error, whether it may be resent, and the wait before the next one."""

    error: CrmError
    disposition: Disposition
    wait: float


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "no response before the read timeout"
    return "connection lost before a response arrived"


def _reason(error: CrmError) -> str:
    return f"HTTP {error.status}" if isinstance(error, CrmApiError) else str(error)
