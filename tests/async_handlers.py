"""``async def`` handlers only: a worker under ``--pool asyncio`` refuses plain ones. Each
attempt appends start and end lines to the execution log."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.exec_log import record as _log
from worker import JobContext, handler


@handler("aio.sleep")
async def sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Await ``seconds`` of (pretend) I/O, recording how the attempt ended."""
    _log("start", ctx)
    how = "returned"
    try:
        await asyncio.sleep(float(payload.get("seconds", 0)))
    except BaseException as exc:
        how = type(exc).__name__
        raise
    finally:
        _log("end", ctx, how=how, cancelled=ctx.cancelled)
    return {"attempt": ctx.attempt}


@handler("aio.cooperative")
async def cooperative(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Await in short steps, stopping once the job is cancelled."""
    _log("start", ctx)
    how = "returned"
    try:
        for _ in range(int(float(payload.get("seconds", 0)) / 0.01)):
            ctx.raise_if_cancelled()
            await asyncio.sleep(0.01)
    except BaseException as exc:
        how = type(exc).__name__
        raise
    finally:
        _log("end", ctx, how=how, cancelled=ctx.cancelled)
    return {"attempt": ctx.attempt}
