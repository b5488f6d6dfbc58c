"""A tiny segment-based router for vendor apps.

Routes match on already-decoded path segments, so an encoded ``/`` inside an id can never
select a different route. A pattern segment is a literal (``klasses``), a placeholder
(``{name}``) or a literal prefix plus placeholder (``externalId={external_id}``); placeholders
never match an empty segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from airflow_provider_crm.sandbox.messages import SandboxRequest, SandboxResponse

Handler = Callable[[SandboxRequest, dict[str, str]], SandboxResponse]

_PLACEHOLDER = re.compile(r"^(?P<prefix>[^{}]*)\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class _Segment:
    literal: str
    placeholder: str | None

    def match(self, segment: str) -> str | None:
        if self.placeholder is None:
            return segment if segment == self.literal else None
        if segment.startswith(self.literal) and len(segment) > len(self.literal):
            return segment[len(self.literal) :]
        return None


def _compile(pattern: str) -> tuple[_Segment, ...]:
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    compiled = []
    for part in pattern[1:].split("/"):
        found = _PLACEHOLDER.match(part)
        if found:
            compiled.append(_Segment(found.group("prefix"), found.group("name")))
        else:
            compiled.append(_Segment(part, None))
    return tuple(compiled)


@dataclass(frozen=True)
class Route:
    """One method + path pattern; ``roles`` lists the roles of which any one grants access."""

    method: str
    pattern: str
    handler: Handler
    roles: tuple[str, ...] = ()
    compiled: tuple[_Segment, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", _compile(self.pattern))

    def match(self, method: str, segments: Sequence[str]) -> dict[str, str] | None:
        """Path parameters when this route matches, else ``None``."""
        if method != self.method or len(segments) != len(self.compiled):
            return None
        params: dict[str, str] = {}
        for spec, segment in zip(self.compiled, segments, strict=True):
            value = spec.match(segment)
            if value is None:
                return None
            if spec.placeholder is not None:
                params[spec.placeholder] = value
        return params


class Router:
    """Ordered routes; the first match wins, so list specific patterns before generic ones."""

    def __init__(self, routes: Sequence[Route] = ()) -> None:
        self._routes: list[Route] = list(routes)

    def add(self, method: str, pattern: str, handler: Handler, roles: Sequence[str] = ()) -> None:
        """Append a route."""
        self._routes.append(Route(method.upper(), pattern, handler, tuple(roles)))

    def match(self, method: str, segments: Sequence[str]) -> tuple[Route, dict[str, str]] | None:
        """The first matching route and its parameters."""
        for route in self._routes:
            params = route.match(method, segments)
            if params is not None:
                return route, params
        return None

    @property
    def routes(self) -> tuple[Route, ...]:
        """All routes, in match order."""
        return tuple(self._routes)
