"""One batch update/upsert call: every input ends up written or refused, never guessed.

- Requests never name a record twice (:func:`~airflow_provider_crm.models.hubspot.split_requests`);
  they go out in input order, so a repeated record keeps its last value.
- HubSpot validates a batch before applying it and answers 400 for the whole batch when one input
  is bad. Such a request is split in halves, recursively, until the bad inputs stand alone; every
  other input is applied. The extra requests are counted in ``isolation_requests``.
- A 207's errors are matched to inputs by trace id (wherever the error carries it) or, for
  missing records, by the ids it names. An input the answer does not settle (an error that names
  no input, or an input in neither ``results`` nor ``errors``) is read back: it counts as written
  only when HubSpot holds its values, so no input is refused for an error that may concern
  another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_crm.errors import CrmBadRequestError, CrmError
from airflow_provider_crm.models.hubspot import (
    OBJECT_ID_PROPERTY,
    BatchIncompleteError,
    BatchInputError,
    BatchResult,
    HubSpotObject,
    error_object_ids,
    error_trace_ids,
    holds,
    split_requests,
)

Post = Callable[[list[dict[str, Any]]], Any]
"""Send one batch request's inputs; returns the answer's JSON body (raises on an error status)."""
Read = Callable[[list[str], str | None, list[str]], dict[str, HubSpotObject]]
"""Read orders by id (or unique property) with the named properties; returns id -> object found."""


def unique_id_property(name: str | None) -> str | None:
    """``name`` unless it names the internal id (then ``None``: the id is the record id)."""
    return None if not name or name == OBJECT_ID_PROPERTY else str(name)


def unique_property(body: Mapping[str, Any]) -> str | None:
    """The unique property an input addresses its record by, or ``None`` for the internal id."""
    return unique_id_property(body.get("idProperty"))


def _fold(value: Any) -> str:
    return str(value).strip().casefold()


def _moment(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class BatchRun:
    """Sends ``bodies`` (prepared inputs, each with its ``objectWriteTraceId``) and settles each one."""

    def __init__(self, bodies: Sequence[dict[str, Any]], *, upsert: bool, post: Post, read: Read, size: int) -> None:
        self.bodies = list(bodies)
        self.upsert = upsert
        self._post = post
        self._read = read
        self.size = size
        self.written: dict[int, HubSpotObject] = {}
        self.refused: dict[int, BatchInputError] = {}
        self.read_back: list[int] = []
        self.requests = 0
        self.read_requests = 0
        self.isolation_requests = 0
        self._in_flight: list[int] = []

    def run(self) -> BatchResult:
        """Send every input; raises :class:`BatchIncompleteError` if a request fails after others settled."""
        try:
            for group in split_requests(self.bodies, self.size):
                self._send_isolating(group)
        except CrmError as exc:
            if not (self.written or self.refused):
                raise  # nothing settled, nothing to keep: the caller sees the error as it came
            raise self._incomplete(exc) from exc
        return self.result()

    def result(self) -> BatchResult:
        return BatchResult(
            results=[self.written[position] for position in sorted(self.written)],
            errors=[self.refused[position] for position in sorted(self.refused)],
            written=dict(self.written),
            read_back=sorted(self.read_back),
            requests=self.requests + self.read_requests,
            isolation_requests=self.isolation_requests,
        )

    def _incomplete(self, cause: CrmError) -> BatchIncompleteError:
        settled = set(self.written) | set(self.refused)
        uncertain = [position for position in self._in_flight if position not in settled]
        unsent = [p for p in range(len(self.bodies)) if p not in settled and p not in set(uncertain)]
        return BatchIncompleteError(self.result(), uncertain=uncertain, unsent=unsent, cause=cause)

    # -- sending ------------------------------------------------------------------------------

    def _send_isolating(self, group: list[int]) -> None:
        """Send one request; on a whole-batch 400, send its halves instead, until inputs stand alone."""
        queue = [group]
        while queue:
            part = queue.pop(0)
            self._in_flight = part
            self.requests += 1
            try:
                body = self._post([self.bodies[position] for position in part])
            except CrmBadRequestError as exc:
                if len(part) == 1:
                    self.refused[part[0]] = self._refused_whole(part[0], exc)
                else:
                    middle = len(part) // 2
                    queue[:0] = [part[:middle], part[middle:]]  # in front, so input order is kept
                    self.isolation_requests += 2
                continue
            self._settle(part, body if isinstance(body, Mapping) else {})
        self._in_flight = []

    def _refused_whole(self, position: int, exc: CrmBadRequestError) -> BatchInputError:
        details = exc.details if isinstance(exc.details, Mapping) else {}
        context = details.get("context")
        return BatchInputError(
            index=position,
            id=str(self.bodies[position]["id"]),
            status=str(exc.status) if exc.status is not None else None,
            category=exc.code or "VALIDATION_ERROR",
            message=exc.message,
            context=dict(context) if isinstance(context, Mapping) else {},
        )

    # -- reading the answer -------------------------------------------------------------------

    def _settle(self, part: list[int], body: Mapping[str, Any]) -> None:
        matcher = _Matcher(self.bodies, part)
        written: dict[int, HubSpotObject] = {}
        for document in body.get("results") or []:
            try:
                obj = HubSpotObject.from_document(document)
            except ValueError:
                continue
            position = matcher.result(obj, document)
            if position is not None:
                written.setdefault(position, obj)
        refused: dict[int, BatchInputError] = {}
        unattributed: list[Mapping[str, Any]] = []
        for error in body.get("errors") or []:
            if not isinstance(error, Mapping):
                continue
            positions = matcher.error(error)
            if not positions:
                unattributed.append(error)
            for position in positions:
                if position not in written:  # an input in ``results`` was applied, whatever an error says
                    refused.setdefault(position, self._refused_by(position, error))
        self.written.update(written)
        self.refused.update(refused)
        unknown = [position for position in part if position not in written and position not in refused]
        if unknown:
            self._read_back(unknown, unattributed, started=_moment(body.get("startedAt")))

    def _refused_by(self, position: int, error: Mapping[str, Any]) -> BatchInputError:
        context = error.get("context")
        status = error.get("status")
        return BatchInputError(
            index=position,
            id=str(self.bodies[position]["id"]),
            status=str(status) if status is not None else None,
            category=str(error["category"]) if error.get("category") else None,
            message=str(error.get("message") or ""),
            context=dict(context) if isinstance(context, Mapping) else {},
        )

    # -- reading back -------------------------------------------------------------------------

    def _read_back(
        self, positions: list[int], unattributed: list[Mapping[str, Any]], *, started: dt.datetime | None
    ) -> None:
        """Settle inputs the answer left open from what HubSpot holds now."""
        names = sorted({name for position in positions for name in self.bodies[position]["properties"]})
        by_property: dict[str | None, list[int]] = {}
        for position in positions:
            by_property.setdefault(unique_property(self.bodies[position]), []).append(position)
        for id_property, group in by_property.items():
            ids = [str(self.bodies[position]["id"]) for position in group]
            self.read_requests += -(-len(set(ids)) // self.size)
            held = self._read(ids, id_property, names)
            for position in group:
                obj = held.get(str(self.bodies[position]["id"]))
                self.read_back.append(position)
                if obj is not None and holds(obj, self.bodies[position]["properties"]):
                    self.written[position] = self._as_written(obj, started)
                else:
                    self.refused[position] = self._not_applied(position, unattributed, found=obj is not None)

    def _as_written(self, obj: HubSpotObject, started: dt.datetime | None) -> HubSpotObject:
        if not self.upsert:
            return obj
        created = _moment(obj.created_at)
        new = None if created is None or started is None else created >= started
        return obj.model_copy(update={"new": new})

    def _not_applied(self, position: int, unattributed: list[Mapping[str, Any]], *, found: bool) -> BatchInputError:
        held = "the order does not hold its values" if found else "no such order"
        if unattributed:
            # Describe it by the error most likely its own: a missing-record error when it is missing.
            fitting = [e for e in unattributed if (e.get("category") == "OBJECT_NOT_FOUND") != found]
            first = (fitting or unattributed)[0]
            more = f" (and {len(unattributed) - 1} more error(s))" if len(unattributed) > 1 else ""
            refusal = self._refused_by(position, first)
            message = f"not applied ({held}, read back); HubSpot reported: {refusal.message}{more}"
            return refusal.model_copy(update={"message": message})
        return BatchInputError(
            index=position,
            id=str(self.bodies[position]["id"]),
            category="NOT_APPLIED",
            message=f"HubSpot's answer did not mention this input and {held} (read back)",
        )


class _Matcher:
    """Finds which input of one request a result or an error belongs to."""

    def __init__(self, bodies: Sequence[Mapping[str, Any]], part: list[int]) -> None:
        self.by_trace: dict[str, int] = {}
        self.by_internal: dict[str, int] = {}
        self.by_unique: dict[tuple[str, str], int] = {}
        ids: dict[str, list[int]] = {}
        for position in part:
            body = bodies[position]
            trace = body.get("objectWriteTraceId")
            if isinstance(trace, str):
                self.by_trace[trace] = position
            id_property = unique_property(body)
            if id_property is None:
                self.by_internal[str(body["id"])] = position
            else:
                self.by_unique[(id_property, _fold(body["id"]))] = position
            ids.setdefault(_fold(body["id"]), []).append(position)
        # An id shared by two inputs (an internal id equal to another's unique value) names neither.
        self.by_id = {key: positions[0] for key, positions in ids.items() if len(positions) == 1}
        self.unique_properties = sorted({name for name, _ in self.by_unique})

    def result(self, obj: HubSpotObject, document: Mapping[str, Any]) -> int | None:
        trace = document.get("objectWriteTraceId")
        if isinstance(trace, str) and trace in self.by_trace:
            return self.by_trace[trace]
        if obj.id in self.by_internal:
            return self.by_internal[obj.id]
        for name in self.unique_properties:
            value = obj.properties.get(name)
            if value is not None and (name, _fold(value)) in self.by_unique:
                return self.by_unique[(name, _fold(value))]
        return None

    def error(self, error: Mapping[str, Any]) -> list[int]:
        positions = [self.by_trace[trace] for trace in error_trace_ids(error) if trace in self.by_trace]
        if not positions:
            positions = [self.by_id[_fold(i)] for i in error_object_ids(error) if _fold(i) in self.by_id]
        return list(dict.fromkeys(positions))
