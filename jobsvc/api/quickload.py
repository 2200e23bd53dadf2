"""The common ``POST /jobs`` item validated without marshmallow, for the same result.

Marshmallow's per-item machinery was half the cost of a 1,000-job batch. An item of the usual
shape (no ``run_at``, every field of its expected JSON type and in range) is accepted here;
anything else, including every invalid item, goes to ``CreateJobSchema``, which stays the one
source of error messages. ``tests/test_api_quickload.py`` checks that both agree on every item.
"""

from __future__ import annotations

import math
from typing import Any

from ..registry import TYPE_NAME_PATTERN
from .schemas import MAX_ATTEMPTS_RANGE, PRIORITY_RANGE, QUEUE_NAME_PATTERN, TIMEOUT_RANGE_SECONDS

_KNOWN_KEYS = frozenset({"type", "payload", "queue", "priority", "max_attempts",
                         "timeout_seconds", "run_at"})


def _integer_in(value: Any, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def quick_load(item: Any, known_types: frozenset[str] | None) -> dict[str, Any] | None:
    """Return what ``CreateJobSchema().load(item)`` returns, or None to let it decide."""
    if type(item) is not dict or not _KNOWN_KEYS.issuperset(item):
        return None
    job_type = item.get("type")
    if (type(job_type) is not str or not TYPE_NAME_PATTERN.fullmatch(job_type)
            or (known_types is not None and job_type not in known_types)):
        return None
    payload = item.get("payload", None)
    if payload is None:
        if "payload" in item:
            return None
        payload = {}
    elif type(payload) is not dict:
        return None
    queue = item.get("queue", "default")
    if type(queue) is not str or not QUEUE_NAME_PATTERN.fullmatch(queue):
        return None
    priority = item.get("priority", 0)
    if not _integer_in(priority, PRIORITY_RANGE):
        return None
    max_attempts = item.get("max_attempts")
    if max_attempts is not None and not _integer_in(max_attempts, MAX_ATTEMPTS_RANGE):
        return None
    timeout = item.get("timeout_seconds")
    if timeout is not None:
        if type(timeout) not in (int, float) or not math.isfinite(timeout):
            return None
        timeout = float(timeout)
        if not TIMEOUT_RANGE_SECONDS[0] <= timeout <= TIMEOUT_RANGE_SECONDS[1]:
            return None
    if item.get("run_at") is not None:
        return None  # dates: marshmallow parses them
    return {"type": job_type, "payload": payload, "queue": queue, "priority": priority,
            "run_at": None, "max_attempts": max_attempts, "timeout_seconds": timeout}
