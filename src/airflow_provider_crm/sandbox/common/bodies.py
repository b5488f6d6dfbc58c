"""The first steps of every write handler: read the JSON object, then check it against the vendor's rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from airflow_provider_crm.sandbox.messages import SandboxResponse

Problem = TypeVar("Problem")


def valid_object(
    body: dict[str, Any] | SandboxResponse,
    validate: Callable[[Mapping[str, Any]], Sequence[Problem]],
    refuse: Callable[[Sequence[Problem]], SandboxResponse],
) -> dict[str, Any] | SandboxResponse:
    """``body`` when ``validate`` finds nothing wrong, else the vendor's answer: the reader's refusal
    (``body`` is already a response) or ``refuse`` of the problems found."""
    if isinstance(body, SandboxResponse):
        return body
    problems = validate(body)
    return refuse(problems) if problems else body
