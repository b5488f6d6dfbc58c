"""Turn pydantic's errors into one :class:`CrmValidationError` that names the record, the field and
the value that was refused.

Messages read ``<record>: <field>: <reason> (got <value>)``, one ``<field>: ...`` part per problem.
Values are record data, shown as ``repr`` cut at :data:`VALUE_EXCERPT_LIMIT` characters so a long
text can't flood a task log or a ledger. A secret can still reach a record (a template such as
``{{ conn.x.password }}`` in a payload), so a shown value first goes through Airflow's secrets
masker, which also hides the whole value of a field with a sensitive name (``passwordStr``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from airflow_provider_crm.errors import CrmValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

VALUE_EXCERPT_LIMIT = 100
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
_NO_VALUE = object()


class EntryError(ValueError):
    """Raised by a validator of a mapping (e.g. Kustomer's ``custom``) about one of its entries,
    so the message points at ``custom.totalNum`` and shows that entry's value, not the whole map.
    Leave ``value`` out when the key itself is wrong."""

    def __init__(self, reason: str, *, key: str, value: Any = _NO_VALUE) -> None:
        super().__init__(reason)
        self.key = key
        self.value = value


def _location(loc: tuple[int | str, ...] | list[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "record"


def _reason(message: str) -> str:
    for prefix in _PYDANTIC_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _masked(value: Any, name: str) -> Any:
    try:
        from airflow_provider_crm._compat import redact
    except ImportError:  # pragma: no cover - the provider always runs with Airflow
        return value
    return redact(value, name=name)


def value_excerpt(value: Any, limit: int = VALUE_EXCERPT_LIMIT, *, name: str = "") -> str:
    """``repr(value)``, masked as Airflow masks logs, cut to ``limit`` characters."""
    text = repr(_masked(value, name))
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def _problem(problem: Any) -> tuple[str, str]:
    """One pydantic error as (model field, ``field[.entry]: reason (got value)``)."""
    loc = list(problem["loc"])
    model_field = _location(loc)
    reason = _reason(str(problem["msg"]))
    value: Any = problem.get("input", _NO_VALUE)
    error = (problem.get("ctx") or {}).get("error")
    if isinstance(error, EntryError):
        loc.append(error.key)
        value = error.value
    elif problem["type"] == "missing" or not loc:
        value = _NO_VALUE  # the input is the whole record, not the field's value
    text = f"{_location(loc)}: {reason}"
    if value is not _NO_VALUE:
        shown = value_excerpt(value, name=str(loc[-1]) if loc else "")
        if shown not in reason:
            text += f" (got {shown})"
    return model_field, text


def validate_model(model: type[ModelT], data: dict[str, Any], *, record: str) -> ModelT:
    """Validate ``data`` against ``model``; on failure raise before anything is sent.

    The error's ``field`` is the first refused model field (``custom``, ``tags.0``); its message
    names entries inside it too (``custom.totalNum``).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(p) for p in exc.errors(include_url=False)]
        first = problems[0][0] if problems else None
        lines = "; ".join(text for _, text in problems)
        raise CrmValidationError(f"{record}: {lines}", field=first, record=record) from None
