"""Waiting for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_INTERVAL_SECONDS = 0.02


def poll_until(
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = DEFAULT_INTERVAL_SECONDS,
) -> T:
    """Return ``predicate()``'s first truthy value, or its last value once ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    message: str | None = None,
) -> T:
    """Return ``predicate()``'s first truthy value; raise AssertionError after ``timeout``."""
    value = poll_until(predicate, timeout, interval)
    if not value:
        raise AssertionError(
            f"{message or _describe(predicate)}: not met within {timeout}s (last value: {value!r})"
        )
    return value


def _describe(predicate: Callable[[], Any]) -> str:
    name = getattr(predicate, "__qualname__", repr(predicate))
    return f"condition {name}"
