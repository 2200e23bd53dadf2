"""The threads pool: slot threads that each take attempts from one shared queue, run them and
report their outcomes. A stop raises an exception in the handler's thread and replaces it."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable

from jobsvc.registry import HandlerRegistry
from jobsvc.store import Outcome, outcomes

from ..errors import Interrupted
from ..execution import Execution, ResultLimits, run_handler

logger = logging.getLogger(__name__)


class SlotPool:
    """Threads that take attempts from one shared queue, run them and report their outcomes.

    One queue for every slot (not one hand-off per slot): a thread that finishes an attempt takes
    the next one already waiting without a wake-up, which is most of a no-op job's cost.
    """

    # Threads are cheap, so their pool runs as many as it claims: nothing claimed waits.
    prefetch = 0

    def __init__(
        self,
        size: int,
        registry: HandlerRegistry,
        traceback_limit: int,
        report: Callable[[Execution, Outcome], None],
        limits: ResultLimits | None = None,
    ) -> None:
        self._limits = limits or ResultLimits()
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

    def stop(
        self,
        execution: Execution,
        exception: type[Interrupted],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Raise ``exception`` in the handler's thread and give its slot to a fresh thread.

        A handler blocked in C code (a long sleep, a socket read) sees it only when that call
        returns; the worker does not wait for it (``then`` runs at once), and the old thread
        ends once the handler returns.
        """
        execution.context.stop_requested.set()
        execution.raise_in_thread(exception)
        self._replace(execution)
        if then is not None:
            then()

    def cancel_requested(self, execution: Execution) -> None:
        """Nothing to forward: the handler shares ``ctx`` with the runner."""

    def _replace(self, execution: Execution) -> None:
        # No-op if no slot had taken the attempt yet.
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
            except Exception:
                # The slot outlives any failure: a dead slot would leave the worker a slot short.
                logger.exception("slot %s: an attempt's bookkeeping failed", thread.name)

    def _run(self, execution: Execution) -> None:
        job = execution.job
        try:
            outcome = run_handler(
                job, execution.context, self._registry, self._traceback_limit, self._limits
            )
        except Interrupted:
            return  # the runner resolved this attempt before it interrupted it
        except BaseException as exc:  # noqa: B036 - building the outcome failed: the attempt
            # still ends with a stored outcome, or the job stays RUNNING under a live heartbeat.
            outcome = outcomes.crashed(job, exc)
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
