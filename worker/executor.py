"""The executor: hands claimed attempts to the slots and knows which are still in flight."""

from __future__ import annotations

import threading

from jobsvc.registry import HandlerRegistry
from jobsvc.store import ClaimedJob, Outcome

from .completer import Completer, Report
from .context import JobContext
from .errors import Interrupted
from .events import Events
from .execution import Execution, ResultLimits
from .slots import SlotPool


class Executor:
    """Runs attempts on ``concurrency`` slots; an attempt is in flight until it is reported."""

    def __init__(
        self,
        concurrency: int,
        registry: HandlerRegistry,
        traceback_limit: int,
        completer: Completer,
        events: Events,
        wake: threading.Event,
        limits: ResultLimits | None = None,
    ) -> None:
        self.concurrency = concurrency
        self._completer = completer
        self._events = events
        self._wake = wake
        self._worker_id = events.worker_id
        self._running: dict[int, Execution] = {}  # claimed and not yet reported
        self._lock = threading.Lock()
        self.slots = SlotPool(concurrency, registry, traceback_limit, self._on_outcome, limits)

    def free(self) -> int:
        """Return how many more attempts the slots can take now."""
        return self.concurrency - len(self._running)

    def count(self) -> int:
        """Return how many attempts are in flight (no lock: safe in a signal handler)."""
        return len(self._running)

    def busy(self) -> bool:
        """Return True while any attempt is in flight."""
        return bool(self._running)

    def start(self, job: ClaimedJob) -> None:
        """Run ``job``'s attempt on the next free slot (the hot path: one lock, no waiting)."""
        self._events.claimed(job)
        context = JobContext(
            job_id=job.id,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            queue=job.queue,
            type=job.type,
            worker_id=self._worker_id,
            lease_token=job.lease_token,
        )
        execution = Execution(job=job, context=context)
        with self._lock:
            self._running[job.id] = execution
        self.slots.submit(execution)

    def _on_outcome(self, execution: Execution, outcome: Outcome) -> None:
        # Called on the slot's thread when its handler returned.
        self._completer.put(Report(outcome, execution.job, execution.elapsed()))
        with self._lock:
            self._running.pop(execution.job.id, None)
        if not self._wake.is_set():
            self._wake.set()

    def in_flight(self) -> list[Execution]:
        """Return the attempts in flight now."""
        with self._lock:
            return list(self._running.values())

    def nearest_deadline(self) -> float:
        """Return the earliest timeout of an attempt in flight (monotonic), 0.0 if none."""
        with self._lock:
            deadlines = [e.deadline for e in self._running.values() if e.deadline]
        return min(deadlines, default=0.0)

    def overdue(self, now: float) -> list[Execution]:
        """Return the attempts in flight whose timeout has passed at ``now``."""
        with self._lock:
            return [
                e for e in self._running.values() if e.deadline is not None and now >= e.deadline
            ]

    def abandon(self, execution: Execution, exception: type[Interrupted]) -> None:
        """Stop a resolved attempt's handler and give its slot to a fresh thread.

        The old thread ends once the handler returns; a handler stuck in C code may take a
        while, and the worker does not wait for it.
        """
        execution.interrupt(exception)
        self.slots.replace(execution)
        with self._lock:
            self._running.pop(execution.job.id, None)
        self._wake.set()

    def close(self) -> None:
        """Let every slot thread end once it is idle."""
        self.slots.close()
