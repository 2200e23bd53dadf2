"""``async def`` handlers for the benchmark (``--pool asyncio`` runs no other kind)."""

from __future__ import annotations

import asyncio
from typing import Any

from worker import handler


@handler("anoop")
async def anoop(payload: Any, context: Any) -> None:
    """Do nothing, as ``noop`` does, on the event loop."""


@handler("io_wait")
async def io_wait(payload: Any, context: Any) -> None:
    """Await ``seconds`` of pretend I/O (W5)."""
    await asyncio.sleep(float(payload.get("seconds", 0.1)))
