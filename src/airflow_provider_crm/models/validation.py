"""Turn pydantic's errors into one :class:`CrmValidationError` that names the record and field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from airflow_provider_crm.errors import CrmValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "record"


def validate_model(model: type[ModelT], data: dict[str, Any], *, record: str) -> ModelT:
    """Validate ``data`` against ``model``; on failure raise before anything is sent."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        first = _location(problems[0]["loc"]) if problems else None
        lines = "; ".join(f"{_location(p['loc'])}: {p['msg']}" for p in problems)
        raise CrmValidationError(f"{record}: invalid {lines}", field=first, record=record) from None
