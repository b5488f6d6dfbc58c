"""Kustomer upsert through bulk jobs: every record submitted as a bulk create, the known ones then as bulk updates.

Kustomer has no upsert endpoint, and a lookup by external id reads one record per request
(``GET /v1/klasses/{name}/externalId={externalId}``). Looking every record up first would cost a
request per record, the cost bulk jobs exist to avoid. So a unit is first submitted as bulk creates
(``POST /v1/klasses/{name}/bulk``, 100 items per request): Kustomer keeps external ids unique per
klass (developer.kustomer.com/api/core-resources/get-kobject-by-external-id), so a record it does not
hold yet is created, and one it holds is refused. Only a refused record is looked up; the object found
is compared with the record (:func:`~airflow_provider_crm.models.kustomer_upsert.plan_upsert`): when it
already holds every value the record is ``unchanged``, else it is sent in a bulk update by id
(``PUT /v1/klasses/{name}/bulk``). A refused record that the lookup does not find was refused for
another reason: it is rejected with Kustomer's message. Which code and message a bulk item gets for an
external id that exists is not documented, so the refusal's wording is not relied on.

Cost of the org's per-minute budget: a new record 1/100 of a request plus its share of the job reads;
a known record that changed 2/100 plus one lookup; a known record that did not change 1/100 plus one
lookup. A lost submit is settled as for bulk creates (look up, submit only what is missing).

With an incremental-sync store (``state_path``), a record whose key the store knows carries the
KObject id Kustomer gave it (:attr:`~airflow_provider_crm.bulk.runner.Item.known_id`) and is sent
straight as a bulk update by that id: 1/100 of a request, no create, no lookup.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.bulk.ledger import CREATED, ERROR, REJECTED, UNCHANGED, Outcome
from airflow_provider_crm.bulk.runner import Item
from airflow_provider_crm.bulk.writers.kustomer import KustomerUpsertWriter
from airflow_provider_crm.bulk.writers.kustomer_jobs import (
    JOBS_PER_UNIT,
    KustomerJobCreateWriter,
    KustomerJobUpdateWriter,
)
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.models.kustomer import KObject
from airflow_provider_crm.models.kustomer_bulk import BULK_MAX_ITEMS, BulkItemResult
from airflow_provider_crm.models.kustomer_upsert import UNCHANGED as PLAN_UNCHANGED
from airflow_provider_crm.models.kustomer_upsert import plan_upsert

_LOST_SUBMIT = "the bulk submit carrying the record got no answer"


class _CreatesForUpsert(KustomerJobCreateWriter):
    """The create pass: a record Kustomer turns out to hold is noted in :attr:`found`, to be planned."""

    def __init__(self, hook: KustomerHook, klass_name: str, **options: Any) -> None:
        super().__init__(hook, klass_name, **options)
        self.found: dict[int, KObject] = {}
        """Stored objects by record position, for the records the create pass did not write."""
        self.after_lost_submit: set[int] = set()
        """Positions of the records found by the lookup after a submit that got no answer."""

    def settle_refusal(self, item: Item, result: BulkItemResult) -> Outcome | None:
        held = self.held(item)
        if not isinstance(held, KObject):
            return None  # not held (refused for another reason) or not readable: Kustomer's refusal stands
        self.found[item.index] = held
        return Outcome(item.index, item.key, UNCHANGED, remote_id=held.id)

    def after_unknown_submit(self, chunk: list[Item]) -> tuple[dict[int, Outcome], list[Item]]:
        settled: dict[int, Outcome] = {}
        again: list[Item] = []
        for item in chunk:
            held = self.held(item)
            if isinstance(held, KObject):
                self.found[item.index] = held
                self.after_lost_submit.add(item.index)
                settled[item.index] = Outcome(item.index, item.key, CREATED, remote_id=held.id)
            elif held is None:
                again.append(item)  # provably not there: safe to submit again
            else:
                settled[item.index] = self.unsettled(item, f"{_LOST_SUBMIT}, and looking it up failed: {held}")
        return settled, again


class KustomerJobUpsertWriter(KustomerUpsertWriter):
    """Creates or updates KObjects by ``external_id`` through bulk jobs (see the module docstring).

    The ledger says ``created``, ``updated`` or ``unchanged``, with the KObject's id. A record found
    after a submit that got no answer and holding every value is ``created`` (the lost job wrote it).
    """

    batch_size = JOBS_PER_UNIT * BULK_MAX_ITEMS

    def __init__(self, hook: KustomerHook, klass_name: str, **job_options: Any) -> None:
        """:param hook: The Kustomer hook to write through.
        :param klass_name: The klass of every record.
        :param job_options: ``schedule``, ``timeout`` and ``max_body_bytes``, as
            :class:`~airflow_provider_crm.bulk.writers.kustomer_jobs.KustomerJobWriting` takes them.
        """
        super().__init__(hook, klass_name)
        self.creates = _CreatesForUpsert(hook, klass_name, **job_options)
        self.updates = KustomerJobUpdateWriter(hook, klass_name, **job_options)
        self.updates.durations = self.creates.durations

    def write(self, items: list[Item]) -> list[Outcome]:
        """Write a unit: bulk updates by id for records whose id the sync store knows, bulk creates for
        the others, then bulk updates for the known records that differ.

        An update by a remembered id that Kustomer refuses for good (the object is gone, say) goes the
        create-and-look-up way, so a stale store costs requests, never a record.

        :param items: The unit's records (validated upserts); their keys are unique in the unit.
        """
        outcomes: dict[int, Outcome] = {}
        by_id = [item for item in items if item.known_id]
        rest = [item for item in items if not item.known_id]
        if by_id:
            positions = {item.index: item for item in by_id}
            sent = [_sending(item, item.prepared.as_update(item.known_id)) for item in by_id]
            for outcome in self.updates.write(sent):
                if outcome.action == REJECTED and outcome.status == ERROR:
                    rest.append(positions[outcome.index])
                else:
                    outcomes[outcome.index] = outcome
            rest.sort(key=lambda item: item.index)
        if rest:
            outcomes.update(self._create_then_update(rest))
        return [outcomes[item.index] for item in items]

    def _create_then_update(self, items: list[Item]) -> dict[int, Outcome]:
        """Bulk creates for all, then bulk updates for the known records that differ."""
        as_creates = [
            Item(item.index, item.key, item.record, item.prepared.as_create(), item.same_as) for item in items
        ]
        outcomes = {outcome.index: outcome for outcome in self.creates.write(as_creates)}
        updates: list[Item] = []
        for item in items:
            stored = self.creates.found.pop(item.index, None)
            if stored is None:
                continue
            if plan_upsert(item.prepared, stored).action == PLAN_UNCHANGED:
                lost_and_found = item.index in self.creates.after_lost_submit
                action = CREATED if lost_and_found else UNCHANGED
                outcomes[item.index] = Outcome(item.index, item.key, action, remote_id=stored.id)
            else:
                updates.append(_sending(item, item.prepared.as_update(stored.id)))
            self.creates.after_lost_submit.discard(item.index)
        if updates:
            outcomes.update((outcome.index, outcome) for outcome in self.updates.write(updates))
        return outcomes


def _sending(item: Item, request: Any) -> Item:
    """The same record, carrying the request one pass sends for it."""
    return Item(item.index, item.key, item.record, request, item.same_as)
