"""Wait for Kustomer bulk jobs in the triggerer, so no worker slot is held while Kustomer processes them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_crm.bulk.job_polling import (
    DEFAULT_FIRST_WAIT,
    DEFAULT_LONGEST_WAIT,
    DEFAULT_TIMEOUT,
    BulkJobWatch,
    JobState,
    PollSchedule,
)
from airflow_provider_crm.errors import (
    CrmApiError,
    CrmAuthenticationError,
    CrmError,
    CrmNotFoundError,
    CrmPermissionError,
    CrmValidationError,
)
from airflow_provider_crm.hooks.kustomer import KustomerHook, KustomerRules, bulk_job_path
from airflow_provider_crm.models.kustomer_bulk import BulkJob
from airflow_provider_crm.transport import Disposition
from airflow_provider_crm.transport.async_reader import AsyncJsonReader, ReadEndpoint

log = logging.getLogger(__name__)

DEFAULT_POLLS_PER_SECOND = 1.0
"""At most one poll a second: a small share of even the Professional org budget (300 a minute)."""
COMPLETE = "complete"
ERROR = "error"
_RULES = KustomerRules()

TRIGGERER_SAFE_SINCE = (3, 2, 2)
"""The first Airflow release on which the real-deployment test (tests/deployment) runs this trigger in a
triggerer. Before it, the triggerer process can crash when a trigger calls the Task SDK (reading a
connection, masking a secret) from a thread: "Response read out of order" (apache/airflow#64620,
fixed by #66412; reported again on 3.2.1 in #67380). On 3.0.6 and 3.1.8 that test's triggerer
crashed on every run. Below this release a deferrable operator waits in the worker instead."""


def triggerer_can_run() -> bool:
    """Whether this Airflow's triggerer runs :class:`KustomerBulkJobTrigger` safely (:data:`TRIGGERER_SAFE_SINCE`)."""
    import airflow
    from packaging.version import Version

    return Version(airflow.__version__).release[:3] >= TRIGGERER_SAFE_SINCE


@dataclass(frozen=True)
class _PollConnection:
    """What the polls need from the Airflow connection, read the way :class:`KustomerHook` reads it."""

    endpoint: ReadEndpoint
    rate: float | None

    @classmethod
    def read(cls, conn_id: str) -> _PollConnection:
        """Read the connection; blocking, so the trigger runs it in a thread. The token is registered with the masker.

        :param conn_id: The Airflow connection of type ``kustomer``.
        """
        hook = KustomerHook(kustomer_conn_id=conn_id)
        verify = hook.bool_extra("verify_ssl", True)
        endpoint = ReadEndpoint(hook.base_url(), hook.token(), hook.timeouts(), hook.retry_settings(), verify)
        return cls(endpoint, hook.rate_limit())


class KustomerBulkJobTrigger(BaseTrigger):
    """Polls ``GET /v1/bulk/{id}`` for each job until all are ``complete``, then fires one event.

    How a deferrable operator uses it: ``execute()`` validates the records, submits the bulk jobs
    from the worker (a submit is a write and is never made here: a triggerer restart would send it
    again), saves the job ids where a task retry finds them, and only then calls
    ``self.defer(trigger=KustomerBulkJobTrigger(conn_id, job_ids, ...), method_name="execute_complete")``.
    ``execute_complete(context, event)`` runs on a worker again: with ``event["status"] ==
    "complete"`` it reads each job's results (:meth:`KustomerHook.get_bulk_results
    <airflow_provider_crm.hooks.kustomer.KustomerHook.get_bulk_results>`) and writes the ledger; with
    ``"error"`` it fails the task with ``event["message"]``, and a retry collects the saved jobs
    instead of submitting them again. Without deferral the worker follows the jobs with the same
    policy (:class:`~airflow_provider_crm.bulk.job_polling.BulkJobWatch`) and the hook's ``get_bulk``.

    Events (JSON only, never the token):

    - ``{"status": "complete", "job_ids": [...]}`` once every job is complete;
    - ``{"status": "error", "reason", "message", "job_id", "job_ids", "completed_job_ids",
      "pending_job_ids"}``: ``reason`` is ``timeout`` (the deadline passed), ``not_found`` (404),
      ``authentication`` (401), ``permission`` (403: the key lacks ``org.permission.bulk.read``),
      ``failed`` (the job's status names a failure), ``refused`` (another 4xx), ``unreadable``
      (an answer without a job) or ``configuration`` (the connection is unusable); ``job_id`` is
      the job it concerns.

    The trigger asks for each job's status (``GET /v1/bulk/{id}``) and leaves the results to
    ``execute_complete``: Airflow stores a trigger's event with the task instance (its
    ``next_kwargs``), so an event must stay small, while the batches of one job carry up to 100
    per-item results. A deferred job therefore costs its submit, its status polls and one read of
    its batches: one request more than a job the worker waits for by reading its batches.

    The connection is read in a worker thread, the way the hook reads it (region host, port,
    ``verify_ssl``, timeouts, ``max_attempts``), because reading extras may block (Airflow masks
    secrets through a synchronous call); polls use ``httpx.AsyncClient``, so the event loop the
    triggerer shares between triggers is never blocked. Jobs are followed oldest first, one request
    per wait (:mod:`~airflow_provider_crm.bulk.job_polling`). A 429 waits as ``Retry-After`` /
    ``x-ratelimit-reset`` say; a 429, 5xx or lost connection that outlasts the retries is tried again
    at the longest wait until the deadline; a 401, 403 or 404 ends the wait at once.

    :param conn_id: The Airflow connection of type ``kustomer`` the jobs were submitted with.
    :param job_ids: The jobs' ids, in the order they were submitted.
    :param klass_name: The klass the jobs write, named in messages.
    :param poll_interval: Seconds before asking again about a job that is not complete.
    :param max_poll_interval: The longest wait; the wait grows towards it while a job shows no progress.
    :param deadline: When to give up, in seconds since the epoch (an absolute time, so that a trigger
        recreated after a triggerer restart keeps it); default :data:`DEFAULT_TIMEOUT` from now.
    :param max_polls_per_second: At most this many requests a second (the connection's
        ``rate_limit_per_second``, when lower, wins).
    """

    def __init__(
        self,
        conn_id: str,
        job_ids: Sequence[str],
        *,
        klass_name: str | None = None,
        poll_interval: float = DEFAULT_FIRST_WAIT,
        max_poll_interval: float = DEFAULT_LONGEST_WAIT,
        deadline: float | None = None,
        max_polls_per_second: float = DEFAULT_POLLS_PER_SECOND,
    ) -> None:
        super().__init__()
        if not max_polls_per_second > 0:
            raise ValueError(f"max_polls_per_second must be positive, got {max_polls_per_second!r}")
        self.conn_id = conn_id
        self.klass_name = klass_name
        self.schedule = PollSchedule(first=float(poll_interval), longest=float(max_poll_interval))
        self.job_ids = list(BulkJobWatch(list(job_ids), self.schedule).job_ids)
        self.deadline = float(deadline) if deadline is not None else time.time() + DEFAULT_TIMEOUT
        self.max_polls_per_second = float(max_polls_per_second)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the arguments to recreate the trigger: ids and timing only, no credential."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "job_ids": list(self.job_ids),
                "klass_name": self.klass_name,
                "poll_interval": self.schedule.first,
                "max_poll_interval": self.schedule.longest,
                "deadline": self.deadline,
                "max_polls_per_second": self.max_polls_per_second,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until every job is complete, or until a reason to stop; yield one event either way."""
        watch = BulkJobWatch(self.job_ids, self.schedule)
        try:
            connection = await asyncio.to_thread(_PollConnection.read, self.conn_id)
        except CrmError as exc:
            yield self._error(watch, "configuration", str(exc))
            return
        interval = 1.0 / self.max_polls_per_second
        if connection.rate:
            interval = max(interval, 1.0 / connection.rate)
        reader = AsyncJsonReader(connection.endpoint, _RULES, min_interval=interval, conn_id=self.conn_id)
        async with reader:
            event = await self._follow(reader, watch)
        yield _without(event, connection.endpoint.token)

    async def _follow(self, reader: AsyncJsonReader, watch: BulkJobWatch) -> TriggerEvent:
        """Ask about the oldest unfinished job until none is left; the event that ends the wait."""
        problem = ""
        while (job_id := watch.current) is not None:
            wait = self.schedule.longest
            try:
                job = await self._poll(reader, job_id)
            except (CrmAuthenticationError, CrmPermissionError, CrmNotFoundError, CrmValidationError) as exc:
                return self._error(watch, _REASONS[type(exc)], self._describe(job_id, str(exc)))
            except CrmApiError as exc:
                if _RULES.disposition(exc) is Disposition.FINAL:
                    return self._error(watch, "refused", self._describe(job_id, str(exc)))
                problem = str(exc)
            except CrmError as exc:
                problem = str(exc)
            except ValueError as exc:
                return self._error(watch, "unreadable", self._describe(job_id, f"the answer was not a job: {exc}"))
            else:
                problem = ""
                state = watch.record(job)
                if state is JobState.FAILED:
                    return self._error(watch, "failed", self._describe(job_id, f"the job ended as {job.status!r}"))
                log.info("Kustomer bulk job %s: %s%s", job_id, job.status, _progress(job))
                wait = watch.wait()
            if watch.current is None:
                break
            remaining = self.deadline - time.time()
            if remaining <= 0:
                return self._error(watch, "timeout", self._timeout_message(watch, problem))
            if problem:
                log.warning("Kustomer bulk job %s: %s; asking again in %.0fs", job_id, problem, wait)
            await asyncio.sleep(min(wait, remaining))
        return TriggerEvent({"status": COMPLETE, "job_ids": list(self.job_ids)})

    async def _poll(self, reader: AsyncJsonReader, job_id: str) -> BulkJob:
        """``GET /v1/bulk/{id}``, read as the hook's ``get_bulk`` reads it."""
        job = BulkJob.from_response(await reader.get_json(bulk_job_path(job_id)))
        if job.id != job_id:
            raise ValueError(f"asked about job {job_id!r}, the answer is about job {job.id!r}")
        return job

    def _describe(self, job_id: str, what: str) -> str:
        klass = f" in klass {self.klass_name!r}" if self.klass_name else ""
        return f"Kustomer bulk job {job_id!r}{klass}: {what}"

    def _timeout_message(self, watch: BulkJobWatch, problem: str) -> str:
        waiting = len(watch.pending)
        last = f"; the last poll failed: {problem}" if problem else ""
        return self._describe(
            str(watch.current),
            f"not complete by the deadline ({waiting} of {len(watch.job_ids)} job(s) still pending){last}. "
            "The jobs may still complete in Kustomer: a retry of the task collects them instead of submitting again",
        )

    def _error(self, watch: BulkJobWatch, reason: str, message: str) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": ERROR,
                "reason": reason,
                "message": message,
                "job_id": watch.current,
                "job_ids": list(self.job_ids),
                "completed_job_ids": list(watch.completed),
                "pending_job_ids": list(watch.pending),
            }
        )


_REASONS: dict[type[CrmError], str] = {
    CrmAuthenticationError: "authentication",
    CrmPermissionError: "permission",
    CrmNotFoundError: "not_found",
    CrmValidationError: "refused",
}


def _progress(job: BulkJob) -> str:
    if job.batches_total is None:
        return ""
    return f" ({job.batches_complete or 0} of {job.batches_total} batches)"


def _without(event: TriggerEvent, token: str) -> TriggerEvent:
    """The event with the token cut out of its message, should the vendor ever have echoed it."""
    message = event.payload.get("message")
    if not token or not isinstance(message, str) or token not in message:
        return event
    return TriggerEvent({**event.payload, "message": message.replace(token, "***")})
