"""Handlers the benchmark's workers run: no work at all, or a timestamp of the handler's start."""

from __future__ import annotations

import time
from typing import Any

from worker import handler


@handler("noop")
def noop(payload: Any, context: Any) -> None:
    """Do nothing: the job's cost is the queue's own."""


@handler("stamp")
def stamp(payload: Any, context: Any) -> dict[str, float]:
    """Return when the handler started (epoch seconds), for the enqueue-to-start latency."""
    return {"started": time.time()}


@handler("cpu")
def cpu(payload: Any, context: Any) -> int:
    """Spin ``loops`` rounds of pure Python (W6: about 20 ms of CPU on the development box)."""
    total = 0
    for i in range(int(payload.get("loops", 400_000))):
        total += i * i % 7
    return total
