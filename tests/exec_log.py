"""The execution log the test handlers append to (``JOBSVC_TEST_EXEC_LOG``): one JSON line per
event, written in one ``write()`` so lines from several processes never interleave. No
handlers here: a module that imports this one registers only its own."""

from __future__ import annotations

import json
import os
import time
from typing import Any

EXEC_LOG_ENV = "JOBSVC_TEST_EXEC_LOG"


def record(event: str, ctx: Any, **extra: Any) -> None:
    """Append ``event`` of ``ctx``'s attempt, with its pid and time, to the execution log."""
    path = os.environ.get(EXEC_LOG_ENV)
    if not path:
        return
    line = json.dumps(
        {
            "event": event,
            "job_id": ctx.job_id,
            "attempt": ctx.attempt,
            "t": time.time(),
            "token": ctx.lease_token,
            "pid": os.getpid(),
            "worker": ctx.worker_id,
            **extra,
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
