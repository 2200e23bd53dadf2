"""Running one attempt in a slot thread, and turning what the handler did into an outcome."""

from __future__ import annotations

import ctypes
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from jobsvc.registry import HandlerRegistry
from jobsvc.store import ClaimedJob, Failed, Outcome, Succeeded

from .context import JobContext
from .errors import Interrupted, PermanentError

logger = logging.getLogger(__name__)


@dataclass
class Execution:
    """One attempt in flight. Exactly one party resolves it: the slot or the runner."""

    job: ClaimedJob
    context: JobContext
    started: float = field(default_factory=time.monotonic)
    thread_id: int | None = None
    _resolved: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def deadline(self) -> float | None:
        if self.job.timeout_seconds is None:
            return None
        return self.started + self.job.timeout_seconds

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

    def bind_thread(self) -> None:
        """Record that the calling thread now runs this attempt's handler."""
        with self._lock:
            self.thread_id = threading.get_ident()

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
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id),
                                                           ctypes.py_object(exception))


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...(truncated)\n" + text[-limit:]


def failure(job: ClaimedJob, exc: BaseException, *, permanent: bool,
            traceback_limit: int, with_traceback: bool = True) -> Failed:
    """Describe a failed attempt of ``job`` caused by ``exc``."""
    error_type = type(exc).__name__
    message = f"{error_type}: {exc}" if str(exc) else error_type
    trace = "".join(traceback.format_exception(exc)) if with_traceback else None
    return Failed(lease=job.lease, attempt=job.attempt, max_attempts=job.max_attempts,
                  message=message, error_type=error_type,
                  traceback=_bounded(trace, traceback_limit) if trace else None,
                  permanent=permanent)


def run_handler(job: ClaimedJob, context: JobContext, registry: HandlerRegistry,
                traceback_limit: int) -> Outcome:
    """Run ``job``'s handler and return the outcome of the attempt."""
    function = registry.get(job.type)
    if function is None:
        known = ", ".join(sorted(registry.names())) or "none"
        return Failed(lease=job.lease, attempt=job.attempt, max_attempts=job.max_attempts,
                      message=f"no handler is registered for job type {job.type!r} "
                              f"(this worker knows: {known})",
                      error_type="UnknownJobType", permanent=True)
    try:
        result = function(job.payload, context)
    except PermanentError as exc:
        return failure(job, exc, permanent=True, traceback_limit=traceback_limit)
    except Interrupted:
        raise
    except BaseException as exc:  # noqa: B036 - SystemExit in a handler fails the attempt,
        # it must not end the slot's thread and leave the job RUNNING under a live heartbeat.
        return failure(job, exc, permanent=False, traceback_limit=traceback_limit)
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return failure(job, TypeError(f"the handler's result is not JSON: {exc}"),
                       permanent=True, traceback_limit=traceback_limit, with_traceback=False)
    return Succeeded(lease=job.lease, result=result)


class Slot:
    """A thread that runs one attempt at a time and hands each outcome to ``report``."""

    def __init__(self, name: str, registry: HandlerRegistry, traceback_limit: int,
                 report: Callable[[Execution, Outcome], None]) -> None:
        self._inbox: list[Execution] = []
        self._ready = threading.Condition()
        self._registry = registry
        self._traceback_limit = traceback_limit
        self._report = report
        self.retired = False
        self.current: Execution | None = None
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def submit(self, execution: Execution) -> None:
        """Run ``execution`` next."""
        with self._ready:
            self.current = execution
            self._inbox.append(execution)
            self._ready.notify()

    def retire(self) -> None:
        """Let the thread end once its current attempt returns; it takes no more work."""
        with self._ready:
            self.retired = True
            self._ready.notify()

    def _next(self) -> Execution | None:
        with self._ready:
            while not self._inbox and not self.retired:
                self._ready.wait()
            return self._inbox.pop() if self._inbox else None

    def _serve(self) -> None:
        while True:
            try:
                execution = self._next()
                if execution is None:
                    return
                self._run(execution)
            except Interrupted:
                # An interruption that arrived after its attempt ended lands here; the runner
                # already reported that attempt.
                continue

    def _run(self, execution: Execution) -> None:
        execution.bind_thread()
        try:
            outcome = run_handler(execution.job, execution.context, self._registry,
                                  self._traceback_limit)
        except Interrupted:
            return  # the runner resolved this attempt before it interrupted it
        finally:
            execution.unbind_thread()
        if execution.resolve():
            self._report(execution, outcome)
