"""Running one attempt in a slot thread, and turning what the handler did into an outcome."""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import queue
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
        result_json = json.dumps(result, allow_nan=False)  # encoded once: the store reuses it
    except (TypeError, ValueError) as exc:
        return failure(job, TypeError(f"the handler's result is not JSON: {exc}"),
                       permanent=True, traceback_limit=traceback_limit, with_traceback=False)
    return Succeeded(lease=job.lease, result=result, result_json=result_json)


class SlotPool:
    """Threads that take attempts from one shared queue, run them and report their outcomes.

    One queue for every slot (not one hand-off per slot): a thread that finishes an attempt takes
    the next one already waiting without a wake-up, which is most of a no-op job's cost.
    """

    def __init__(self, size: int, registry: HandlerRegistry, traceback_limit: int,
                 report: Callable[[Execution, Outcome], None]) -> None:
        self._queue: queue.SimpleQueue[Execution | None] = queue.SimpleQueue()
        self._registry = registry
        self._traceback_limit = traceback_limit
        self._report = report
        self._names = itertools.count(1)
        self._threads: set[_SlotThread] = set()
        self._lock = threading.Lock()
        for _ in range(size):
            self._spawn()

    def submit(self, execution: Execution) -> None:
        """Run ``execution`` on the next free slot."""
        self._queue.put(execution)

    def replace(self, execution: Execution) -> None:
        """Give up on the thread running ``execution``: it ends once the handler returns, and a
        fresh thread takes its place at once. No-op if no slot had taken it yet."""
        thread = execution.slot
        if thread is None:
            return
        with self._lock:
            if thread in self._threads:
                self._threads.discard(thread)
                thread.retired = True
                self._spawn()

    def close(self) -> None:
        """Let every thread end once it is idle."""
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)

    def _spawn(self) -> None:
        thread = _SlotThread(self, f"slot-{next(self._names)}")
        self._threads.add(thread)
        thread.start()

    def serve(self, thread: _SlotThread) -> None:
        """The body of every slot thread."""
        take = self._queue.get
        while not thread.retired:
            try:
                execution = take()
                if execution is None:
                    return
                if execution.begin(thread):
                    self._run(execution)
            except Interrupted:
                # An interruption that arrived after its attempt ended lands here; the runner
                # already reported that attempt.
                continue

    def _run(self, execution: Execution) -> None:
        try:
            outcome = run_handler(execution.job, execution.context, self._registry,
                                  self._traceback_limit)
        except Interrupted:
            return  # the runner resolved this attempt before it interrupted it
        finally:
            execution.unbind_thread()
        if execution.resolve():
            self._report(execution, outcome)


class _SlotThread(threading.Thread):
    def __init__(self, pool: SlotPool, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.pool = pool
        self.retired = False

    def run(self) -> None:
        self.pool.serve(self)
