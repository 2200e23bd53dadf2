"""Leaving the process once the runner returned, whatever threads its handlers left behind."""

from __future__ import annotations

import os
import sys
import threading

from .logs import FLUSH_WAIT_SECONDS, flush_logs


def exit_now_if_threads_remain(code: int) -> None:
    """Exit with ``code`` now if a non-daemon thread (a handler's) would keep the process alive.

    The interpreter waits for every non-daemon thread at exit; a handler that started one and
    never stopped it would keep a worker that logged "stopped" from ever exiting.
    """
    main = threading.main_thread()
    if not any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    flush_logs(FLUSH_WAIT_SECONDS)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream has nothing left to write
            pass
    os._exit(code)
