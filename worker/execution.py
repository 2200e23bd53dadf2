"""One attempt in flight, and turning what its handler did into an outcome."""

from __future__ import annotations

import ctypes
import json
import threading
import time
from dataclasses import dataclass, field

from jobsvc.registry import HandlerRegistry
from jobsvc.store import ClaimedJob, Outcome, outcomes

from .context import JobContext
from .errors import Interrupted, PermanentError


@dataclass
class Execution:
    """One attempt in flight. Exactly one party resolves it: the slot or the runner."""

    job: ClaimedJob
    context: JobContext
    started: float | None = None  # when a slot began it; the timeout counts from here
    thread_id: int | None = None
    slot: threading.Thread | None = None
    _resolved: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def deadline(self) -> float | None:
        if self.job.timeout_seconds is None or self.started is None:
            return None
        return self.started + self.job.timeout_seconds

    def elapsed(self) -> float | None:
        """Return how long the attempt has run, in seconds (None if no slot began it)."""
        return None if self.started is None else time.monotonic() - self.started

    def resolve(self) -> bool:
        """Return True to the first caller only: that one reports the outcome."""
        with self._lock:
            if self._resolved:
                return False
            self._resolved = True
            return True

    @property
    def resolved(self) -> bool:
        return self._resolved

    def begin(self, slot: threading.Thread) -> bool:
        """Bind the attempt to the calling slot thread; False if it was resolved meanwhile
        (released at shutdown, cancelled) and must not run."""
        with self._lock:
            if self._resolved:
                return False
            self.slot = slot
            self.thread_id = threading.get_ident()
            self.started = time.monotonic()
            return True

    def unbind_thread(self) -> None:
        """Record that the handler returned; no interruption may target it any more."""
        with self._lock:
            self.thread_id = None

    def interrupt(self, exception: type[Interrupted]) -> None:
        """Raise ``exception`` inside the thread running the handler, at its next bytecode.

        A handler blocked in C code (a long sleep, a socket read) sees it only when that call
        returns; the runner does not wait for it, and the slot is replaced meanwhile.
        """
        self.context.stop_requested.set()
        # Under the lock, so the exception can only target this attempt's handler (or the
        # slot's bookkeeping right after it, which expects it), never the slot's next job.
        with self._lock:
            if self.thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread_id), ctypes.py_object(exception)
                )


def run_handler(
    job: ClaimedJob, context: JobContext, registry: HandlerRegistry, traceback_limit: int
) -> Outcome:
    """Run ``job``'s handler and return the outcome of the attempt."""
    function = registry.get(job.type)
    if function is None:
        return outcomes.unknown_type(job, registry.names())
    try:
        result = function(job.payload, context)
    except PermanentError as exc:
        return outcomes.failed(job, exc, permanent=True, traceback_limit=traceback_limit)
    except Interrupted:
        raise
    except BaseException as exc:  # noqa: B036 - SystemExit in a handler fails the attempt,
        # it must not end the slot's thread and leave the job RUNNING under a live heartbeat.
        return outcomes.failed(job, exc, permanent=False, traceback_limit=traceback_limit)
    try:
        result_json = json.dumps(result, allow_nan=False)  # encoded once: the store reuses it
    except (TypeError, ValueError) as exc:
        return outcomes.not_json(job, exc)
    return outcomes.succeeded(job, result, result_json)
