"""A handler module whose schedule is invalid: a worker that loads it must refuse to start."""

from __future__ import annotations

from typing import Any

from worker import JobContext, handler


@handler("test.bad_schedule", cron="61 * * * *", timezone="Europe/Berlin")
def bad(payload: dict[str, Any], ctx: JobContext) -> None:
    return None
