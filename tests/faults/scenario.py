"""Small helpers the scenarios share."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

WAIT_INTERVAL_SECONDS = 0.05


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Return ``predicate()``'s first truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(WAIT_INTERVAL_SECONDS)
    raise AssertionError(f"condition not met within {timeout}s")


def starts(executions: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """Return the execution log's start lines whose fields equal ``match``."""
    return [e for e in executions
            if e["event"] == "start" and all(e.get(k) == v for k, v in match.items())]


def epoch(value: float | datetime) -> float:
    """Return a stored time as epoch seconds (SQLite stores them; PostgreSQL returns datetimes)."""
    return value.timestamp() if isinstance(value, datetime) else float(value)
