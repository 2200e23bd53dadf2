"""Example handlers: the seed README's ``generate_report`` and a few to try retries with.

Run them with ``JOBSVC_HANDLERS=examples.handlers python -m worker`` (``make run`` does).
"""

from __future__ import annotations

import time
from typing import Any

from worker import JobContext, PermanentError, handler


@handler("generate_report")
def generate_report(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Pretend to build a report for a user over a time range."""
    user_id = payload.get("user_id")
    if user_id is None:
        raise PermanentError("payload.user_id is required")
    return {"report": "ok", "user_id": user_id, "range": payload.get("range", "all_time")}


@handler("echo")
def echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Return the payload unchanged."""
    return payload


@handler("sleep")
def sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, float]:
    """Sleep ``payload["seconds"]`` seconds (try timeouts and graceful shutdown with it)."""
    seconds = float(payload.get("seconds", 1))
    time.sleep(seconds)
    return {"slept": seconds}


@handler("flaky")
def flaky(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Fail until attempt ``payload["succeed_on"]`` (default 3), then succeed."""
    succeed_on = int(payload.get("succeed_on", 3))
    if ctx.attempt < succeed_on:
        raise RuntimeError(f"flaky: attempt {ctx.attempt} of {succeed_on} fails on purpose")
    return {"succeeded_on_attempt": ctx.attempt}
