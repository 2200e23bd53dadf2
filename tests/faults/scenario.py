"""Small helpers the scenarios share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.support.waiting import wait_until

WAIT_INTERVAL_SECONDS = 0.05


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Return ``predicate()``'s first truthy value; fail after ``timeout`` seconds."""
    return wait_until(predicate, timeout=timeout, interval=WAIT_INTERVAL_SECONDS)


def starts(executions: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """Return the execution log's start lines whose fields equal ``match``."""
    return [
        e
        for e in executions
        if e["event"] == "start" and all(e.get(k) == v for k, v in match.items())
    ]


def epoch(value: float | datetime) -> float:
    """Return a stored time as epoch seconds (SQLite stores them; PostgreSQL returns datetimes)."""
    return value.timestamp() if isinstance(value, datetime) else float(value)
