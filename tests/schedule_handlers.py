"""Handlers with schedules, for the periodic-job tests (imported only by the workers that name
this module: registering a schedule makes every worker that has it enqueue ticks)."""

from __future__ import annotations

from typing import Any

from worker import JobContext, handler

TICK_TYPE = "test.tick"


@handler(TICK_TYPE, every_seconds=1, payload={"from": "the schedule"})
def tick(payload: dict[str, Any], ctx: JobContext) -> Any:
    return {"tick": payload}
