"""Stopping: signals, then the drain (grace period), then the release of what still runs."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

from jobsvc.errors import DatabaseUnavailable
from jobsvc.store import outcomes

from .completer import Completer, Report
from .errors import Interrupted
from .events import Events
from .execution import Execution
from .executor import Executor
from .logs import FLUSH_WAIT_SECONDS, flush_logs
from .maintenance import Maintenance

logger = logging.getLogger(__name__)

DRAIN_CHECK_SECONDS = 0.05  # how often the drain looks whether the running jobs finished
EXIT_AT_ONCE = 1  # the exit code after a second signal


class StopFlag:
    """Set once when the worker stops claiming; read and set without a lock, since a signal
    handler sets it on the main thread, which may be inside any lock at that moment."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class Shutdown:
    """First SIGTERM/SIGINT (or ``request_stop``): no new claims, drain, release; a second
    signal: exit at once."""

    def __init__(
        self,
        executor: Executor,
        maintenance: Maintenance,
        completer: Completer,
        events: Events,
        *,
        grace_seconds: float,
        wake: threading.Event,
        stop: StopFlag,
    ) -> None:
        self._executor = executor
        self._maintenance = maintenance
        self._completer = completer
        self._events = events
        self._grace_seconds = grace_seconds
        self._wake = wake
        self._stop = stop

    def install_signal_handlers(self) -> None:
        """Route SIGTERM and SIGINT here (call from the main thread)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def request_stop(self) -> None:
        """Stop claiming; running jobs get the grace period, then are released."""
        self._stop.set()
        self._wake.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            logger.warning("second signal: exiting now; leases of running jobs will expire")
            flush_logs(FLUSH_WAIT_SECONDS)
            os._exit(EXIT_AT_ONCE)
        logger.info(
            "signal %s: no new claims; draining %d running jobs",
            signal.Signals(signum).name,
            self._executor.count(),
        )
        self.request_stop()

    def drain(self) -> None:
        """Keep maintaining the running jobs for the grace period, then release the rest."""
        flush_logs()  # the signal's line is news; the drain itself may log nothing for a while
        self._release_unstarted()  # prefetched: the grace is for the running jobs
        deadline = time.monotonic() + self._grace_seconds
        while self._executor.busy() and time.monotonic() < deadline:
            try:
                self._maintenance.run_due()
            except DatabaseUnavailable:
                pass
            self._wake.wait(min(DRAIN_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
            self._wake.clear()
        self._release_leftovers()

    def _release_unstarted(self) -> None:
        for execution in self._executor.prefetched():
            if execution.resolve_unstarted():
                self._report_released(execution)
                self._executor.abandon(execution, Interrupted)  # no slot will take it now

    def _release_leftovers(self) -> None:
        for execution in self._executor.in_flight():
            if execution.resolve():
                self._report_released(execution)
                self._executor.release(execution)

    def _report_released(self, execution: Execution) -> None:
        job = execution.job
        self._events.released(job)
        self._completer.put(Report(outcomes.released(job), job, execution.elapsed()))
