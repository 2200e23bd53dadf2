"""Handlers for the cancellation and self-fencing tests. Each attempt appends a start line and,
however it ends, an end line to the execution log, so a test sees from outside the worker when
a handler really stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.exec_log import record as _log
from worker import JobContext, handler

STEP_SECONDS = 0.01


@contextmanager
def _recorded(ctx: JobContext) -> Iterator[None]:
    _log("start", ctx)
    how = "returned"
    try:
        yield
    except BaseException as exc:
        how = type(exc).__name__
        raise
    finally:
        _log("end", ctx, how=how, cancelled=ctx.cancelled)


@handler("cancel.cooperative")
def cooperative(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Work ``seconds`` in short steps, stopping as soon as the job is cancelled."""
    with _recorded(ctx):
        deadline = time.monotonic() + float(payload.get("seconds", 0))
        while time.monotonic() < deadline:
            ctx.raise_if_cancelled()
            time.sleep(STEP_SECONDS)
        return {"attempt": ctx.attempt}


@handler("cancel.stubborn")
def stubborn(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Work ``seconds`` in short steps and never look at cancellation."""
    with _recorded(ctx):
        deadline = time.monotonic() + float(payload.get("seconds", 0))
        while time.monotonic() < deadline:
            time.sleep(STEP_SECONDS)
        return {"attempt": ctx.attempt}
