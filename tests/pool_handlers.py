"""Handlers for the processes-pool tests: ones that take their whole process down, hold the
GIL, or leak. Each attempt appends start and end lines (with its pid) to the execution log."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from tests.exec_log import record as _log
from worker import JobContext, handler

CATASTROPHIC = re.compile(r"(a+)+$")  # exponential backtracking, all inside the C engine
_leaked: list[bytes] = []


@handler("pool.regex")
def catastrophic_regex(payload: dict[str, Any], ctx: JobContext) -> bool:
    """Hold the GIL in C code for (far) longer than any timeout."""
    _log("start", ctx)
    matched = CATASTROPHIC.match("a" * int(payload.get("n", 40)) + "b") is not None
    _log("end", ctx, how="returned")
    return matched


@handler("pool.exit")
def exit_process(payload: dict[str, Any], ctx: JobContext) -> None:
    """Leave the process at once, as a crash in C would."""
    _log("start", ctx)
    os._exit(int(payload.get("code", 3)))


@handler("pool.leak")
def leak(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Keep ``mb`` MB alive in the process after the job."""
    _log("start", ctx)
    _leaked.append(b"x" * (int(payload.get("mb", 1)) * 1024 * 1024))  # touched: resident
    _log("end", ctx, how="returned")
    return {"pid": os.getpid()}


@handler("pool.pid")
def pid(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Return the pid of the process that ran the job (and whether it was cancelled)."""
    _log("start", ctx)
    time.sleep(float(payload.get("seconds", 0)))
    _log("end", ctx, how="returned")
    return {"pid": os.getpid(), "cancelled": ctx.cancelled}
