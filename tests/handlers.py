"""Handlers the tests run. Each attempt appends a line to an execution log, so tests can check
from outside the worker what ran, where, and when."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

from tests.exec_log import record as _log
from worker import JobContext, PermanentError, handler

WORK_STEP_SECONDS = 0.02


@handler("test.echo")
def echo(payload: dict[str, Any], ctx: JobContext) -> Any:
    _log("start", ctx)
    _log("end", ctx)
    return {"echo": payload, "attempt": ctx.attempt}


@handler("test.sleep")
def sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, float]:
    _log("start", ctx)
    time.sleep(float(payload["seconds"]))
    _log("end", ctx)
    return {"slept": float(payload["seconds"])}


@handler("test.flaky")
def flaky(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    _log("start", ctx)
    if ctx.attempt < int(payload["succeed_on"]):
        _log("end", ctx, failed=True)
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    _log("end", ctx)
    return {"attempt": ctx.attempt}


@handler("test.always_fails")
def always_fails(payload: dict[str, Any], ctx: JobContext) -> None:
    _log("start", ctx)
    _log("end", ctx, failed=True)
    raise ValueError("this handler always fails")


@handler("test.permanent")
def permanent(payload: dict[str, Any], ctx: JobContext) -> None:
    raise PermanentError("bad input: nothing to retry")


@handler("test.spin")
def spin(payload: dict[str, Any], ctx: JobContext) -> None:
    _log("start", ctx)
    while True:  # a hung handler: only the worker's timeout stops it
        pass


@handler("test.nul_error")
def nul_error(payload: dict[str, Any], ctx: JobContext) -> None:
    raise PermanentError("bad byte \x00 in input")


@handler("test.exits")
def exits(payload: dict[str, Any], ctx: JobContext) -> None:
    raise SystemExit(3)


@handler("test.not_json")
def not_json(payload: dict[str, Any], ctx: JobContext) -> object:
    return {"when": object()}


@handler("test.kill_self")
def kill_self(payload: dict[str, Any], ctx: JobContext) -> None:
    _log("start", ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@handler("test.work")
def work(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Work ``seconds`` in short steps (so an interruption lands at once), then say who did it."""
    _log("start", ctx)
    deadline = time.monotonic() + float(payload.get("seconds", 0))
    while time.monotonic() < deadline and not ctx.stop_requested.is_set():
        time.sleep(min(WORK_STEP_SECONDS, max(0.0, deadline - time.monotonic())))
    _log("end", ctx, stopped=ctx.stop_requested.is_set())
    return {"attempt": ctx.attempt, "token": ctx.lease_token, "pid": os.getpid()}


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ raises")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ raises")


@handler("test.unprintable_error")
def unprintable_error(payload: dict[str, Any], ctx: JobContext) -> None:
    raise _Unprintable()


@handler("test.deep_result")
def deep_result(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for _ in range(int(payload["depth"])):
        result = {"a": result}
    return result


@handler("test.big_result")
def big_result(payload: dict[str, Any], ctx: JobContext) -> dict[str, str]:
    return {"blob": "x" * int(payload["bytes"])}


@handler("test.surrogate_error")
def surrogate_error(payload: dict[str, Any], ctx: JobContext) -> None:
    raise ValueError("bad text \udcff here")


@handler("test.async_sleep")
async def async_sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(0.05)
    return {"slept": 0.05, "attempt": ctx.attempt}


@handler("test.leaves_thread")
def leaves_thread(payload: dict[str, Any], ctx: JobContext) -> dict[str, bool]:
    # A non-daemon thread that never ends: the worker must still exit on SIGTERM.
    threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
    return {"left": True}


@handler("test.async_hang")
async def async_hang(payload: dict[str, Any], ctx: JobContext) -> None:
    await asyncio.sleep(3600)


RELEASE_WAIT_MAX_SECONDS = 60.0


@handler("test.wait_for_file")
def wait_for_file(payload: dict[str, Any], ctx: JobContext) -> None:
    """Run until the file ``payload["path"]`` exists (a test releases the attempt by hand)."""
    _log("start", ctx)
    deadline = time.monotonic() + RELEASE_WAIT_MAX_SECONDS
    while not os.path.exists(payload["path"]) and time.monotonic() < deadline:
        time.sleep(WORK_STEP_SECONDS)
    _log("end", ctx)


@handler("test.fails_until_fixed")
def fails_until_fixed(payload: dict[str, Any], ctx: JobContext) -> dict[str, str]:
    """Fails while the file ``payload["fixed"]`` is missing: a bug fixed, then the job retried."""
    _log("start", ctx)
    if not os.path.exists(payload["fixed"]):
        _log("end", ctx, failed=True)
        raise RuntimeError("the report service is down (fix it, then retry)")
    _log("end", ctx)
    return {"report": "sent"}
