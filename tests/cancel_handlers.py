"""Handlers for the cancellation and self-fencing tests. Each attempt appends a start line and,
however it ends, an end line to the execution log, so a test sees from outside the worker when
a handler really stopped."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker import JobContext, handler

EXEC_LOG_ENV = "JOBSVC_TEST_EXEC_LOG"  # the same log as tests.handlers
STEP_SECONDS = 0.01


def _log(event: str, ctx: JobContext, **extra: Any) -> None:
    path = os.environ.get(EXEC_LOG_ENV)
    if not path:
        return
    record = {"event": event, "job_id": ctx.job_id, "attempt": ctx.attempt, "t": time.time()}
    line = json.dumps({**record, "token": ctx.lease_token, "pid": os.getpid(), **extra})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())  # one short write: lines never interleave
    finally:
        os.close(fd)


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
