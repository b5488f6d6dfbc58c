"""Order writes with HubSpot's outcomes: find by id or ``idProperty``, validate, keep values unique.

Single calls turn a :class:`WriteError` into a 400/404/409 answer; batch calls turn it into
one ``StandardError`` per failing input while the other inputs are applied. Checks run in the
order HubSpot reports them: a bad ``idProperty``, then invalid property values, then a
missing object, then a unique value already held by another order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_crm.sandbox.vendors.hubspot.errors import (
    CONFLICT,
    OBJECT_NOT_FOUND,
    VALIDATION_ERROR,
    property_errors_parts,
)
from airflow_provider_crm.sandbox.vendors.hubspot.properties import OBJECT_ID, PropertyDef, check_properties
from airflow_provider_crm.sandbox.vendors.hubspot.state import HubSpotState

Catalogue = Mapping[str, PropertyDef]


@dataclass(frozen=True)
class WriteError:
    """Why one write was refused, with the parts of an ``Error``/``StandardError`` body."""

    status: int
    category: str
    message: str
    context: dict[str, list[str]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


def not_found(order_id: str, id_property: str | None) -> WriteError:
    """404 for an order that is not there, naming the id (and the ``idProperty`` used)."""
    if id_property in (None, OBJECT_ID):
        message = "Object not found. objectId are usually numeric."
    else:
        message = f'Object not found. No order has {id_property} = "{order_id}".'
    return WriteError(404, OBJECT_NOT_FOUND, message, {"ids": [order_id]})


class OrderWrites:
    """Creates, updates and upserts orders in a :class:`HubSpotState` (caller holds the app lock)."""

    def __init__(self, state: HubSpotState, catalogue: Callable[[], Catalogue]) -> None:
        self._state = state
        self._catalogue = catalogue

    def catalogue(self) -> Catalogue:
        """The property definitions in force."""
        return self._catalogue()

    def record(self, order_id: str) -> dict[str, Any] | None:
        """A stored order by internal id."""
        return self._state.get(order_id)

    def check_id_property(self, id_property: str | None, *, writable: bool = False) -> WriteError | None:
        """``idProperty`` must name a unique property (and, to create objects, a writable one)."""
        if id_property is None:
            return None
        definition = self._catalogue().get(id_property)
        if definition is None:
            message = f'Property "{id_property}" does not exist'
        elif not definition.unique:
            message = f'Property "{id_property}" is not a unique property, so it cannot be used as idProperty'
        elif writable and definition.read_only:
            message = f'Property "{id_property}" is read only, so it cannot be used as idProperty of an upsert'
        else:
            return None
        return WriteError(400, VALIDATION_ERROR, message, {"propertyName": [id_property]})

    def resolve(self, order_id: str, id_property: str | None) -> str | WriteError:
        """The internal id of the order addressed by ``order_id`` (and ``idProperty``)."""
        error = self.check_id_property(id_property)
        if error is not None:
            return error
        owner = self._state.owner_of(id_property or OBJECT_ID, order_id)
        return owner if owner is not None else not_found(order_id, id_property)

    def check_values(self, properties: Mapping[str, str]) -> WriteError | None:
        """400 listing every unknown, read-only or invalid property value."""
        errors = check_properties(self._catalogue(), properties)
        if not errors:
            return None
        parts = property_errors_parts(errors)
        return WriteError(400, VALIDATION_ERROR, parts["message"], parts["context"], parts["errors"])

    def check_unique(self, properties: Mapping[str, str], order_id: str | None) -> WriteError | None:
        """409 when a unique value is already held by another order."""
        catalogue = self._catalogue()
        for name, value in properties.items():
            definition = catalogue.get(name)
            if definition is None or not definition.unique or value == "":
                continue
            owner = self._state.owner_of(name, value)
            if owner is not None and owner != order_id:
                message = f'Unique value "{value}" of property {name} is already used by order {owner}'
                return WriteError(409, CONFLICT, message, {"propertyName": [name], "ids": [owner]})
        return None

    def create(self, properties: Mapping[str, str]) -> dict[str, Any] | WriteError:
        """Store a new order."""
        error = self.check_values(properties) or self.check_unique(properties, None)
        if error is not None:
            return error
        return self._state.create(properties)

    def update(
        self, order_id: str, id_property: str | None, properties: Mapping[str, str]
    ) -> dict[str, Any] | WriteError:
        """Overwrite the given properties of an existing order."""
        error = self.check_id_property(id_property) or self.check_values(properties)
        if error is not None:
            return error
        resolved = self.resolve(order_id, id_property)
        if isinstance(resolved, WriteError):
            return resolved
        error = self.check_unique(properties, resolved)
        if error is not None:
            return error
        record = self._state.update(resolved, properties)
        assert record is not None  # resolved above, under the same lock
        return record

    def upsert(
        self, value: str, id_property: str, properties: Mapping[str, str]
    ) -> tuple[dict[str, Any], bool] | WriteError:
        """Update the order whose ``idProperty`` is ``value``, or create it: ``(record, new)``."""
        error = self.check_id_property(id_property, writable=True) or self.check_values(properties)
        if error is not None:
            return error
        owner = self._state.owner_of(id_property, value)
        if owner is not None:
            error = self.check_unique(properties, owner)
            if error is not None:
                return error
            record = self._state.update(owner, properties)
            assert record is not None  # found above, under the same lock
            return record, False
        values = {**properties, id_property: value}
        error = self.check_unique(values, None)
        if error is not None:
            return error
        return self._state.create(values), True
