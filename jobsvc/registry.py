"""The handler registry: job type names mapped to the functions that run them.

It lives in jobsvc, not in the worker, because the API needs the same list to reject unknown
types; ``worker`` re-exports ``handler`` as the public way to register one.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from .schedules import ScheduleSpec

Handler = Callable[[Any, Any], Any]

# Dots are allowed ("reports.generate"), but a type is only ever a key into this registry.
TYPE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


class DuplicateHandler(ValueError):
    """Two handlers claim the same job type."""


class HandlerRegistry:
    """Maps job types to handler functions."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._schedules: dict[str, ScheduleSpec] = {}

    def register(self, job_type: str, function: Handler) -> None:
        """Register ``function`` as the handler of ``job_type``."""
        if not TYPE_NAME_PATTERN.fullmatch(job_type):
            raise ValueError(f"invalid job type name: {job_type!r}")
        existing = self._handlers.get(job_type)
        if existing is not None and existing is not function:
            raise DuplicateHandler(f"job type {job_type!r} already has a handler: {existing!r}")
        self._handlers[job_type] = function

    def schedule(self, spec: ScheduleSpec) -> None:
        """Make ``spec.name``'s job periodic (its handler is registered too)."""
        existing = self._schedules.get(spec.name)
        if existing is not None and existing != spec:
            raise DuplicateHandler(f"job type {spec.name!r} already has a schedule: {existing}")
        self._schedules[spec.name] = spec

    def schedules(self) -> tuple[ScheduleSpec, ...]:
        """Return the schedules of the registered handlers, by name."""
        return tuple(self._schedules[name] for name in sorted(self._schedules))

    def get(self, job_type: str) -> Handler | None:
        """Return the handler of ``job_type``, or None."""
        return self._handlers.get(job_type)

    def names(self) -> frozenset[str]:
        """Return every registered job type."""
        return frozenset(self._handlers)


registry = HandlerRegistry()


def handler(
    job_type: str,
    *,
    cron: str | None = None,
    every_seconds: int | None = None,
    timezone: str = "UTC",
    payload: dict[str, Any] | None = None,
    queue: str = "default",
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``job_type``.

    With ``cron`` (five fields, in ``timezone``) or ``every_seconds``, workers that have this
    handler also enqueue one ``job_type`` job with ``payload`` on ``queue`` per tick. A bad
    schedule raises ``InvalidSchedule`` here, when the handler module is imported.
    """
    spec = None
    if cron is not None or every_seconds is not None or payload is not None:
        spec = ScheduleSpec(
            job_type, cron, every_seconds, timezone, queue, {} if payload is None else payload
        )

    def decorate(function: Handler) -> Handler:
        registry.register(job_type, function)
        if spec is not None:
            registry.schedule(spec)
        return function

    return decorate


def load_handler_modules(module_paths: Iterable[str]) -> frozenset[str]:
    """Import the configured handler modules; return the job types now registered."""
    for path in module_paths:
        # Paths come from operator configuration (JOBSVC_HANDLERS / --handlers), never requests.
        importlib.import_module(path)
    return registry.names()
