"""A tiny segment-based router for vendor apps.

Routes match on already-decoded path segments, so an encoded ``/`` inside an id can never
select a different route. A pattern segment is a literal (``klasses``), a placeholder
(``{name}``) or a literal prefix plus placeholder (``externalId={external_id}``); placeholders
never match an empty segment.

Handlers declare their routes where they are defined, with :func:`route`, and
:meth:`Router.serving` collects them from an app. When two patterns match the same path, the more
specific one wins (a literal segment before a prefixed placeholder before a bare one), so the
order in which handlers are written does not matter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from airflow_provider_crm.sandbox.messages import SandboxRequest, SandboxResponse

Handler = Callable[[SandboxRequest, dict[str, str]], SandboxResponse]
HandlerMethod = TypeVar("HandlerMethod", bound=Callable[..., SandboxResponse])

_DECLARED = "_sandbox_routes"

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

    @property
    def generality(self) -> int:
        """0 for a literal, 1 for a prefixed placeholder, 2 for a bare one."""
        if self.placeholder is None:
            return 0
        return 1 if self.literal else 2


def route(method: str, pattern: str, roles: Sequence[str] = ()) -> Callable[[HandlerMethod], HandlerMethod]:
    """Declare that the decorated handler method serves ``method pattern``; stack it for several routes.

    :param method: The HTTP method.
    :param pattern: The path pattern, e.g. ``/v1/klasses/{klass}/{kobject_id}``.
    :param roles: Roles (or scopes) of which any one grants access; empty: no check.
    """

    def declare(handler: HandlerMethod) -> HandlerMethod:
        declared: list[tuple[str, str, tuple[str, ...]]] = getattr(handler, _DECLARED, [])
        setattr(handler, _DECLARED, [(method.upper(), pattern, tuple(roles)), *declared])
        return handler

    return declare


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
    """Routes tried most specific first, so the order they are given in does not matter."""

    def __init__(self, routes: Sequence[Route] = ()) -> None:
        self._routes = sorted(routes, key=lambda route: tuple(segment.generality for segment in route.compiled))

    @classmethod
    def serving(cls, app: object) -> Router:
        """The routes that ``app``'s handler methods declare with :func:`route`.

        :param app: The object whose class (or a base class) defines the handlers.
        """
        routes: list[Route] = []
        seen: set[str] = set()
        for owner in type(app).__mro__:
            for name, member in vars(owner).items():
                declared = getattr(member, _DECLARED, None)
                if declared is None or name in seen:
                    continue
                seen.add(name)
                handler = getattr(app, name)
                routes.extend(Route(method, pattern, handler, roles) for method, pattern, roles in declared)
        return cls(routes)

    def match(self, method: str, segments: Sequence[str]) -> tuple[Route, dict[str, str]] | None:
        """The most specific matching route and its parameters."""
        for route in self._routes:
            params = route.match(method, segments)
            if params is not None:
                return route, params
        return None

    @property
    def routes(self) -> tuple[Route, ...]:
        """All routes, in match order."""
        return tuple(self._routes)
