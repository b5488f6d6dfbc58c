"""Bulk operators: write every record of a list (from XCom) or a file, at the vendor's rate limit.

Each writes a per-record ledger (JSON Lines: key, remote id, action, status, error), sends
rejected records whole to a dead-letter file that the same operator accepts as input for a retry,
and returns a compact summary (counts, and the key → id map for up to 100 records) as its XCom;
``push_ids=True`` pushes the whole map (see :mod:`airflow_provider_crm.bulk.ids`).
See :mod:`airflow_provider_crm.bulk.writers` for each vendor's record shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_crm.lineage import BulkLineage
from airflow_provider_crm.models.hubspot import BATCH_SIZE, checked_batch_size

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_crm.bulk.runner import RecordWriter
    from airflow_provider_crm.bulk.sources import BadRecord
    from airflow_provider_crm.bulk.submitted_jobs import SubmittedJobs
    from airflow_provider_crm.bulk.sync_state import SyncState
    from airflow_provider_crm.hooks.base import CrmHook
    from airflow_provider_crm.hooks.hubspot import HubSpotHook
    from airflow_provider_crm.hooks.kaiten import KaitenHook
    from airflow_provider_crm.hooks.kustomer import KustomerHook
    from airflow_provider_crm.hooks.microbase import MicroBaseHook
    from airflow_provider_crm.triggers.kustomer_bulk import KustomerBulkJobTrigger

_COMMON_TEMPLATES = ("records", "source", "ledger_path", "dead_letter_path", "state_path", "full_sync_every")


class BulkWriteOperator(BulkLineage, BaseOperator):
    """Shared machinery; subclasses say which hook (:attr:`hook`) and which record writer to use.

    :param records: A list of records (e.g. ``upstream.output``), or JSON text of one. (templated)
    :param source: Instead of ``records``, a ``.jsonl``/``.ndjson``/``.csv``/``.json`` file, local or
        any ``ObjectStoragePath`` URL (``s3://``, ``gs://``, ... where its provider is installed);
        read as a stream. (templated)
    :param ledger_path: Where to write one JSON line per input record. (templated)
    :param dead_letter_path: Where to write each rejected record (replayable as ``source``). (templated)
    :param on_record_error: ``fail`` (stop at the first rejected record), ``warn`` or ``skip``.
    :param max_reject_ratio: With ``warn``/``skip``, the share of rejected records above which the
        task fails. A run in which every record was rejected always fails.
    :param dry_run: Validate every record and resolve what can be resolved (lookups), write
        nothing, report would-create / would-update / invalid.
    :param max_workers: Concurrent requests (per-record vendors) or batches (HubSpot).
    :param rate_limit: Requests per second for this task; default: the connection's
        ``rate_limit_per_second`` extra, else the vendor's documented limit.
    :param push_ids: Also push the key → remote id map of every record written (this try's and
        the earlier tries') under the XCom key ``ids``, read back from the ledger (so ``ledger_path``
        is required). More than :data:`~airflow_provider_crm.bulk.ids.MAX_PUSHED_IDS` ids fail the
        task with :class:`~airflow_provider_crm.bulk.ids.TooManyIdsError`: read them with ``read_ids``.
    :param column_types: For a CSV ``source``, the type of a column's cells by column name, e.g.
        ``{"custom.legacyCode": "str", "custom.score": "float"}``; wins over the type the vendor's
        attribute names give (Kustomer ``Num``/``Bool``, ``tags``). Types: ``str``, ``int``,
        ``float``, ``number``, ``bool``, ``list``, ``json`` (see :mod:`airflow_provider_crm.bulk.cells`).
    :param progress_interval: Seconds between the progress lines a run logs (records done, of how many
        when ``records`` is a list, records/s, 429s waited out, time left); ``None`` or 0: none. A
        summary line ends every run either way.
    :param skip_unchanged: Send only records whose request differs from the one last sent for their key
        and confirmed by the vendor; the others are ``unchanged`` with status ``skipped`` in the ledger
        (see :mod:`~airflow_provider_crm.bulk.sync_state`). Needs ``state_path``.
    :param state_path: The incremental-sync store, local or any ``ObjectStoragePath`` URL; one per
        task, one run at a time (``max_active_runs=1``). Given without ``skip_unchanged``, every record
        is sent and the store is kept up to date. (templated)
    :param full_sync_every: Send every record when the last full sync is older than this, e.g. ``"7d"``,
        ``"12h"``; ``"0s"`` forces one now. (templated)
    :param on_state_error: ``fail`` (default: a store that cannot be read fails the task before anything is
        sent) or ``full_sync`` (send every record and write a new store).
    """

    template_fields: Sequence[str] = _COMMON_TEMPLATES
    ui_color = "#f0f0ff"

    def __init__(
        self,
        *,
        records: Any = None,
        source: str | None = None,
        ledger_path: str | None = None,
        dead_letter_path: str | None = None,
        on_record_error: str = "fail",
        max_reject_ratio: float = 0.0,
        dry_run: bool = False,
        max_workers: int = 4,
        rate_limit: float | None = None,
        column_types: dict[str, str] | None = None,
        push_ids: bool = False,
        progress_interval: float | None = 60.0,
        skip_unchanged: bool = False,
        state_path: str | None = None,
        full_sync_every: str | timedelta | None = None,
        on_state_error: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_crm.bulk.cells import check_column_types
        from airflow_provider_crm.bulk.policy import ErrorPolicy
        from airflow_provider_crm.bulk.sync_settings import ON_STATE_ERROR, parse_every

        ErrorPolicy(on_record_error, max_reject_ratio)  # refuse bad settings when the DAG is parsed
        if push_ids and not ledger_path:
            raise ValueError("push_ids reads the ids back from the ledger: give ledger_path too")
        if skip_unchanged and not state_path:
            raise ValueError("skip_unchanged compares records with the store at state_path: give state_path too")
        if on_state_error not in ON_STATE_ERROR:
            raise ValueError(f"on_state_error must be one of {', '.join(ON_STATE_ERROR)}, not {on_state_error!r}")
        if not (isinstance(full_sync_every, str) and "{{" in full_sync_every):
            parse_every(full_sync_every)  # refused when the DAG is parsed (a template is checked when rendered)
        self.skip_unchanged = skip_unchanged
        self.state_path = state_path
        self.full_sync_every = full_sync_every
        self.on_state_error = on_state_error
        self.push_ids = push_ids
        self.records = records
        self.source = source
        self.ledger_path = ledger_path
        self.dead_letter_path = dead_letter_path
        self.on_record_error = on_record_error
        self.max_reject_ratio = max_reject_ratio
        # Not ``self.dry_run``: that name is BaseOperator's method for rendering templates without running.
        self.preview_only = dry_run
        self.max_workers = max_workers
        self.rate_limit = rate_limit
        self.column_types = check_column_types(column_types)  # refused when the DAG is parsed
        if progress_interval is not None and progress_interval < 0:
            raise ValueError(f"progress_interval must be None or at least 0, got {progress_interval}")
        self.progress_interval = progress_interval or None

    @cached_property
    def hook(self) -> CrmHook:
        """The vendor's hook for this task's connection; each operator below says which."""
        raise NotImplementedError

    def make_writer(self) -> RecordWriter:
        """The vendor's record writer, talking through :attr:`hook`."""
        raise NotImplementedError

    def _typed_writer(self) -> RecordWriter:
        """The writer, converting CSV cells by the vendor's types and ``column_types`` before it checks them."""
        from airflow_provider_crm.bulk.cells import typed_cells

        return typed_cells(self.make_writer(), self.column_types)

    def execute(self, context: Context) -> dict[str, Any]:
        return self.write_records(context, self._typed_writer())

    def read_records(self) -> Iterator[dict[str, Any] | BadRecord]:
        """The task's input, read lazily from ``records`` or ``source``."""
        from airflow_provider_crm.bulk.sources import iter_records

        records = None if self.source else (self.records if self.records is not None else [])
        return iter_records(records, self.source)

    def write_records(
        self, context: Context, writer: RecordWriter, after_run: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Run ``writer`` over the input: ledger, resume, error policy, summary and ids.

        :param context: The task's Airflow context.
        :param writer: The record writer.
        :param after_run: Called once the ledger holds every record (before the policy may fail the task).
        """
        from airflow_provider_crm.bulk.ledger import JsonLinesWriter, Ledger
        from airflow_provider_crm.bulk.policy import ErrorPolicy
        from airflow_provider_crm.bulk.progress import TaskStateProgress
        from airflow_provider_crm.bulk.runner import BulkRunner

        policy = ErrorPolicy(self.on_record_error, self.max_reject_ratio)
        sync = self.sync_state()
        self.hook.use_rate_limit(self.rate_limit)
        progress = None if self.preview_only else TaskStateProgress.from_context(context)
        resuming = progress is not None and progress.load().started
        ledger = Ledger(
            JsonLinesWriter(self.ledger_path, append=resuming),
            JsonLinesWriter(None if self.preview_only else self.dead_letter_path, append=resuming),
        )
        limiter = self.hook.transport.limiter
        runner = BulkRunner(
            writer,
            ledger,
            policy,
            max_workers=self.max_workers,
            dry_run=self.preview_only,
            progress=progress,
            rate_limited=lambda: limiter.throttled if limiter else 0,
            progress_interval=self.progress_interval,
            expected=len(self.records) if isinstance(self.records, (list, tuple)) else None,
            logger=self.log,
            sync=sync,
        )
        completed = False
        try:
            summary = runner.run(self.read_records())
            completed = True
        finally:
            if sync is not None and not self.preview_only:
                sync.save(completed=completed)  # confirmed outcomes count even when the run failed
        self.note_written(summary.counts)
        if after_run is not None:
            after_run()
        result = summary.as_xcom()
        self.log.info("bulk %s: %s", "dry run" if self.preview_only else "write", result)
        if not self.preview_only:
            ti = context.get("ti") if context else None
            if ti is not None:
                ti.xcom_push(key="summary", value=result)
            too_many = self._push_ids(ti, summary.ledger_paths)
            self.check_unsettled(summary.counts)
            policy.check(rejected=summary.rejected, total=summary.total, retry_later=summary.retry_later)
            if too_many is not None:
                raise too_many
            if progress is not None:
                progress.clear()  # done: a later re-run of this task instance sends everything again
        return result

    def sync_scope(self) -> str:
        """What writes through this task's store: the operator and its target (a klass, an id property)."""
        target = getattr(self, "klass_name", None) or getattr(self, "id_property", None) or ""
        return f"{type(self).__name__}:{target}"

    def sync_state(self) -> SyncState | None:
        """The incremental-sync store for this run (None without ``state_path``), read before anything is sent."""
        if not self.state_path:
            return None
        from airflow_provider_crm.bulk.sync_settings import parse_every
        from airflow_provider_crm.bulk.sync_state import SyncState

        sync = SyncState(
            self.state_path,
            self.sync_scope(),
            full_sync_every=parse_every(self.full_sync_every),
            on_state_error=self.on_state_error,
            skip=self.skip_unchanged,
        )
        if sync.full:
            self.log.info("incremental sync: sending every record (%s); store: %s", sync.reason, self.state_path)
        else:
            self.log.info(
                "incremental sync: skipping records unchanged since the store was saved at %s (%d keys, %s)",
                sync.header.saved_at,
                len(sync.base),
                self.state_path,
            )
        return sync

    def check_unsettled(self, counts: dict[str, int]) -> None:
        """Fail the task when records ended in a state no retry can resolve; by default none can.

        :param counts: Records per ledger action, over this try and the earlier ones.
        """

    def _push_ids(self, ti: Any, ledger_paths: list[str]) -> Exception | None:
        """Push the ids under the XCom key ``ids``; the error to raise (after the policy's) when too many."""
        if not self.push_ids:
            return None
        from airflow_provider_crm.bulk import ids

        try:
            found = ids.read_ids(*ledger_paths, limit=ids.MAX_PUSHED_IDS)
        except ids.TooManyIdsError as exc:
            return exc
        if ti is not None:
            ti.xcom_push(key="ids", value=found)
        return None


KUSTOMER_MODES = ("bulk_job", "per_record")
SETTLED_BY_LOOKUP = frozenset({"not_found", "timeout", "failed"})
"""Trigger errors after which records are settled from what Kustomer holds, as when the worker waits."""


class KustomerBulkCreateKObjectsOperator(BulkWriteOperator):
    """Create KObjects of ``klass_name``; a record whose ``external_id`` already exists is ``unchanged``.

    By default (``mode="bulk_job"``) records go through Kustomer's bulk jobs: up to 100 per request,
    under the connection's ``bulk_max_body_bytes`` extra (default 1 MiB), each job polled until
    complete and each record's ledger line taken from the job's results (see
    :mod:`airflow_provider_crm.bulk.writers.kustomer_jobs`). One bulk request counts once against
    the org's per-minute limit. ``mode="per_record"`` sends one request per record instead.

    A create whose submit got no answer is looked up by ``external_id`` before anything is sent
    again; a record without one cannot be, so it is marked ``unknown`` in the ledger, is not sent
    again, and the task fails saying so: give records an ``external_id``.

    With ``deferrable=True`` (``mode="bulk_job"``, not a dry run) the worker validates and submits
    every job (same chunks, ``_clientRef`` and lost-answer rules), saves each job as Kustomer accepts
    it, then defers to :class:`~airflow_provider_crm.triggers.kustomer_bulk.KustomerBulkJobTrigger`,
    which polls the jobs in the triggerer (at most one poll a second, or ``rate_limit`` a second
    when lower) and holds no worker slot. The task resumes in :meth:`execute_complete` only to read
    the results and write the ledger (same ledger lines, policy and ids as without deferral). Jobs
    are saved in the task state store (Airflow 3.3+), else in ``<ledger_path>.jobs.json`` (keep
    ``ledger_path`` the same across tries); with neither, the task waits in the worker instead. A
    retry of the task (after a crash between submit and deferral, or after the trigger fired)
    collects the saved jobs instead of submitting them again. Differences: every record is
    submitted before any result is known, so ``on_record_error="fail"`` stops only the collecting;
    ``job_timeout`` bounds the wait for all the jobs together, counted from the deferral; a record
    whose key an earlier record holds is written (waiting in the worker) after the earlier one is
    collected. A trigger error fails the task with its message, except a job unknown to Kustomer,
    failed or not complete by the deadline: its records are settled by lookup, as without deferral.

    Takes the parameters of :class:`BulkWriteOperator`, and:

    :param klass_name: The KObject klass to write. (templated)
    :param kustomer_conn_id: The Airflow connection to use (default ``kustomer_default``).
    :param mode: ``bulk_job`` (default) or ``per_record``.
    :param poll_interval: The shortest wait before a job is first read (the run learns how long jobs take);
        later reads wait longer, up to 10 s.
    :param job_timeout: Seconds to wait for a job to complete before settling its records by lookup.
    :param deferrable: Wait for the jobs in the triggerer; default ``[operators] default_deferrable``
        (``False`` when unset).
    """

    template_fields: Sequence[str] = (*_COMMON_TEMPLATES, "klass_name")

    def __init__(
        self,
        *,
        klass_name: str,
        kustomer_conn_id: str = "kustomer_default",
        mode: str = "bulk_job",
        poll_interval: float = 1.0,
        job_timeout: float = 3600.0,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if deferrable is None:
            # Read when the operator is made, not when this module is imported, as official providers' default.
            from airflow.configuration import conf

            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        if mode not in KUSTOMER_MODES:
            raise ValueError(f"mode must be one of {', '.join(KUSTOMER_MODES)}, not {mode!r}")
        if not 0 < poll_interval <= job_timeout:
            raise ValueError(
                f"need 0 < poll_interval <= job_timeout, got poll_interval={poll_interval}, job_timeout={job_timeout}"
            )
        self.klass_name = klass_name
        self.kustomer_conn_id = kustomer_conn_id
        self.mode = mode
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout

    @cached_property
    def hook(self) -> KustomerHook:
        """The hook for ``kustomer_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.kustomer import KustomerHook

        return KustomerHook(kustomer_conn_id=self.kustomer_conn_id)

    def make_writer(self) -> RecordWriter:
        from airflow_provider_crm.bulk.writers import kustomer, kustomer_jobs

        if self.mode == "per_record":
            return kustomer.KustomerCreateWriter(self.hook, self.klass_name)
        return kustomer_jobs.KustomerJobCreateWriter(self.hook, self.klass_name, **self.job_polling())

    def execute(self, context: Context) -> dict[str, Any]:
        if not self.deferrable or self.mode != "bulk_job" or self.preview_only:
            return super().execute(context)
        from airflow_provider_crm.triggers.kustomer_bulk import TRIGGERER_SAFE_SINCE, triggerer_can_run

        if not triggerer_can_run():
            self.log.warning(
                "deferrable: the triggerer of Airflow releases before %s can crash running this trigger "
                "(apache/airflow#64620): waiting for the jobs in the worker instead",
                ".".join(map(str, TRIGGERER_SAFE_SINCE)),
            )
            return super().execute(context)
        plan = self.submitted_jobs(context)
        if plan is None:
            self.log.warning(
                "deferrable: no task state store (Airflow < 3.3) and no ledger_path to keep the submitted jobs by, "
                "so a retry could not find them: waiting for the jobs in the worker instead"
            )
            return super().execute(context)
        from airflow_provider_crm.bulk.progress import Resume, TaskStateProgress, Tracker
        from airflow_provider_crm.bulk.writers.kustomer_jobs import submit_records

        self.hook.use_rate_limit(self.rate_limit)
        progress = TaskStateProgress.from_context(context)
        tracker = Tracker(progress.load() if progress is not None else Resume())
        sync = self.sync_state()
        unchanged = sync.matches if sync is not None else None
        submit_records(self._typed_writer(), self.read_records(), plan, tracker.in_play, unchanged)
        if not plan.job_ids:
            return self.collect_jobs(context, plan, ())
        self.log.info("submitted %d Kustomer bulk job(s); waiting for them in the triggerer", len(plan.job_ids))
        self.defer(trigger=self.job_trigger(plan.job_ids), method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: read each job's results and write the ledger.

        :param context: The task's Airflow context.
        :param event: The trigger's event: ``{"status": "complete", "job_ids"}`` or an error (see
            :class:`~airflow_provider_crm.triggers.kustomer_bulk.KustomerBulkJobTrigger`).
        """
        from airflow_provider_crm.errors import CrmConfigurationError, CrmError

        plan = self.submitted_jobs(context)
        if plan is None:
            raise CrmConfigurationError("the submitted Kustomer bulk jobs were saved nowhere a retry can read")
        if event.get("status") == "complete":
            return self.collect_jobs(context, plan, event.get("job_ids") or [])
        if event.get("reason") in SETTLED_BY_LOOKUP:
            self.log.warning("%s; settling the records of the jobs not seen complete by lookup", event.get("message"))
            return self.collect_jobs(context, plan, event.get("completed_job_ids") or [])
        error = CrmConfigurationError if event.get("reason") == "configuration" else CrmError
        raise error(str(event.get("message") or f"the wait for the Kustomer bulk jobs ended with {event!r}"))

    def submitted_jobs(self, context: Context) -> SubmittedJobs | None:
        """The jobs saved for this task instance (by an earlier step or try), where a retry finds them.

        :param context: The task's Airflow context.
        """
        from airflow_provider_crm.bulk.submitted_jobs import SubmittedJobs, plan_store

        store = plan_store(context, self.ledger_path)
        return None if store is None else SubmittedJobs.load(store)

    def collect_jobs(self, context: Context, plan: SubmittedJobs, complete: Sequence[str]) -> dict[str, Any]:
        """Write the ledger from the saved jobs' results, then drop the saved jobs.

        :param context: The task's Airflow context.
        :param plan: The saved jobs.
        :param complete: The ids of the jobs the trigger saw complete.
        """
        from airflow_provider_crm.bulk.writers.kustomer_jobs import CollectedJobsWriter

        self.hook.use_rate_limit(self.rate_limit)
        return self.write_records(context, CollectedJobsWriter(self._typed_writer(), plan, complete), plan.drop)

    def job_trigger(self, job_ids: Sequence[str]) -> KustomerBulkJobTrigger:
        """The trigger that waits for ``job_ids``: this task's poll waits, ``job_timeout`` from now, the rate limit.

        :param job_ids: The submitted jobs, oldest first.
        """
        import time

        from airflow_provider_crm.triggers.kustomer_bulk import DEFAULT_POLLS_PER_SECOND, KustomerBulkJobTrigger

        schedule = self.job_polling()["schedule"]
        return KustomerBulkJobTrigger(
            self.kustomer_conn_id,
            job_ids,
            klass_name=self.klass_name,
            poll_interval=schedule.first,
            max_poll_interval=schedule.longest,
            deadline=time.time() + self.job_timeout,
            max_polls_per_second=min(DEFAULT_POLLS_PER_SECOND, self.rate_limit or DEFAULT_POLLS_PER_SECOND),
        )

    def job_polling(self) -> dict[str, Any]:
        """How bulk jobs are polled: waits from ``poll_interval`` growing to 10 s, for ``job_timeout`` seconds."""
        from airflow_provider_crm.bulk.job_polling import DEFAULT_LONGEST_WAIT, PollSchedule

        schedule = PollSchedule(first=self.poll_interval, longest=max(self.poll_interval, DEFAULT_LONGEST_WAIT))
        return {"schedule": schedule, "timeout": self.job_timeout}

    def check_unsettled(self, counts: dict[str, int]) -> None:
        """Fail when records may or may not exist in Kustomer: sending them again could duplicate them.

        :param counts: Records per ledger action, over this try and the earlier ones.
        """
        from airflow_provider_crm.bulk.writers.kustomer_jobs import UNKNOWN
        from airflow_provider_crm.errors import CrmOutcomeUnknownError

        unknown = counts.get(UNKNOWN, 0)
        if unknown:
            raise CrmOutcomeUnknownError(
                f"{unknown} record(s) without external_id may or may not have been created: the bulk submit that "
                "carried them got no answer. They were not sent again (that could duplicate them) and are marked "
                "'unknown' in the ledger; check them in Kustomer. Give records an external_id to make this safe.",
                vendor="Kustomer",
            )


class KustomerBulkUpdateKObjectsOperator(KustomerBulkCreateKObjectsOperator):
    """Update KObjects of ``klass_name``; each record carries the KObject ``id``.

    Through bulk jobs by default, as :class:`KustomerBulkCreateKObjectsOperator`. An update whose
    submit got no answer is submitted again: the same values sent twice leave what once does; an
    update with ``rev`` refused as stale the second time is settled by reading the object.

    Takes the parameters of :class:`KustomerBulkCreateKObjectsOperator`.
    """

    def make_writer(self) -> RecordWriter:
        from airflow_provider_crm.bulk.writers import kustomer, kustomer_jobs

        if self.mode == "per_record":
            return kustomer.KustomerUpdateWriter(self.hook, self.klass_name)
        return kustomer_jobs.KustomerJobUpdateWriter(self.hook, self.klass_name, **self.job_polling())


class KustomerBulkUpsertKObjectsOperator(KustomerBulkCreateKObjectsOperator):
    """Create or update KObjects of ``klass_name`` by ``external_id`` (required in every record).

    The ledger says ``created``, ``updated``, or ``unchanged`` when the stored object already held
    every value. A dry run looks each record up and reports ``would_create`` / ``would_update`` /
    ``unchanged``.

    By default (``mode="bulk_job"``) every record is first submitted in bulk creates, 100 per
    request; a record Kustomer refuses because its external id exists is looked up and, when it
    differs, sent in a bulk update by id (see
    :mod:`airflow_provider_crm.bulk.writers.kustomer_job_upsert`): a new record costs 1/100 of a
    request, a known one a lookup and one or two hundredths. ``mode="per_record"`` looks each record
    up, then sends a ``PUT`` or a ``POST``: one or two requests per record.

    The updates depend on the creates' results, so this operator waits for its jobs in the worker
    even when ``deferrable`` is true (it logs that it does).

    Takes the parameters of :class:`KustomerBulkCreateKObjectsOperator`.
    """

    def make_writer(self) -> RecordWriter:
        from airflow_provider_crm.bulk.writers.kustomer import KustomerUpsertWriter
        from airflow_provider_crm.bulk.writers.kustomer_job_upsert import KustomerJobUpsertWriter

        if self.mode == "per_record":
            return KustomerUpsertWriter(self.hook, self.klass_name)
        return KustomerJobUpsertWriter(self.hook, self.klass_name, **self.job_polling())

    def execute(self, context: Context) -> dict[str, Any]:
        if self.deferrable and self.mode == "bulk_job" and not self.preview_only:
            self.log.info("an upsert's updates depend on its creates' results: waiting for its jobs in the worker")
        return self.write_records(context, self._typed_writer())


class KaitenBulkUpdateCustomersOperator(BulkWriteOperator):
    """Update Kaiten customers by ``slug``; absent fields keep their value, ``null`` clears.

    Takes the parameters of :class:`BulkWriteOperator`, and:

    :param kaiten_conn_id: The Airflow connection to use (default ``kaiten_default``).
    """

    def __init__(self, *, kaiten_conn_id: str = "kaiten_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kaiten_conn_id = kaiten_conn_id

    @cached_property
    def hook(self) -> KaitenHook:
        """The hook for ``kaiten_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.kaiten import KaitenHook

        return KaitenHook(kaiten_conn_id=self.kaiten_conn_id)

    def make_writer(self) -> RecordWriter:
        from airflow_provider_crm.bulk.writers.kaiten import KaitenWriter

        return KaitenWriter(self.hook)


class MicroBaseBulkUpdateCustomersOperator(BulkWriteOperator):
    """``customer.update`` for each record (keyed by ``id``).

    Takes the parameters of :class:`BulkWriteOperator`, and:

    :param microbase_conn_id: The Airflow connection to use (default ``microbase_default``).
    """

    def __init__(self, *, microbase_conn_id: str = "microbase_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.microbase_conn_id = microbase_conn_id

    @cached_property
    def hook(self) -> MicroBaseHook:
        """The hook for ``microbase_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.microbase import MicroBaseHook

        return MicroBaseHook(microbase_conn_id=self.microbase_conn_id)

    def make_writer(self) -> RecordWriter:
        from airflow_provider_crm.bulk.writers.microbase import MicroBaseWriter

        return MicroBaseWriter(self.hook)


class HubSpotBulkUpdateOrdersOperator(BulkWriteOperator):
    """Batch-update orders, ``batch_size`` (at most 100) per call; records ``{"id", "properties"}``.

    A batch HubSpot refuses whole for one bad value is split until only the bad records are
    rejected; records HubSpot's answer leaves unsettled are read back, so nothing HubSpot applied
    is rejected. A dry run reads the orders in batches (100 per request).

    Takes the parameters of :class:`BulkWriteOperator`, and:

    :param id_property: A unique order property that identifies the records instead of the
        HubSpot id. (templated)
    :param clear_nulls: Send a ``None`` property value as ``""``, which clears it, instead of leaving
        it out (so upstream nulls do not wipe CRM values by default).
    :param batch_size: Records per batch call, 1 to 100.
    :param hubspot_conn_id: The Airflow connection to use (default ``hubspot_default``).
    """

    template_fields: Sequence[str] = (*_COMMON_TEMPLATES, "id_property")
    upsert = False

    def __init__(
        self,
        *,
        id_property: str | None = None,
        clear_nulls: bool = False,
        batch_size: int = BATCH_SIZE,
        hubspot_conn_id: str = "hubspot_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.id_property = id_property
        self.clear_nulls = clear_nulls
        self.batch_size = checked_batch_size(batch_size)
        self.hubspot_conn_id = hubspot_conn_id

    @cached_property
    def hook(self) -> HubSpotHook:
        """The hook for ``hubspot_conn_id``, imported here so parsing a DAG does not load it."""
        from airflow_provider_crm.hooks.hubspot import HubSpotHook

        return HubSpotHook(hubspot_conn_id=self.hubspot_conn_id)

    def make_writer(self) -> RecordWriter:
        from airflow_provider_crm.bulk.writers.hubspot import HubSpotBatchWriter

        return HubSpotBatchWriter(
            self.hook,
            upsert=self.upsert,
            id_property=self.id_property,
            clear_nulls=self.clear_nulls,
            batch_size=self.batch_size,
        )


class HubSpotBulkUpsertOrdersOperator(HubSpotBulkUpdateOrdersOperator):
    """Create or update orders by the unique property ``id_property``, 100 per call.

    Takes the parameters of :class:`HubSpotBulkUpdateOrdersOperator`, and:

    :param id_property: The unique order property that identifies each record; required here. (templated)
    """

    upsert = True

    def __init__(self, *, id_property: str, **kwargs: Any) -> None:
        super().__init__(id_property=id_property, **kwargs)
