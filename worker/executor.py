"""The executor: hands claimed attempts to the pool and knows which are still in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable

from jobsvc.registry import HandlerRegistry
from jobsvc.store import ClaimedJob, Outcome

from .completer import Completer, Report
from .context import JobContext
from .errors import Interrupted
from .events import Events
from .execution import Execution, ResultLimits
from .pools import Pool, PoolSettings, open_pool


class Executor:
    """Runs attempts on a pool of ``concurrency`` slots; an attempt is in flight until it is
    reported."""

    def __init__(
        self,
        concurrency: int,
        registry: HandlerRegistry,
        traceback_limit: int,
        completer: Completer,
        events: Events,
        wake: threading.Event,
        limits: ResultLimits | None = None,
        pool: PoolSettings | None = None,
    ) -> None:
        self.concurrency = concurrency
        self._completer = completer
        self._events = events
        self._wake = wake
        self._worker_id = events.worker_id
        self._running: dict[int, Execution] = {}  # claimed and not yet reported
        self._lock = threading.Lock()
        self.pool: Pool = open_pool(
            pool or PoolSettings(),
            concurrency,
            registry,
            traceback_limit,
            self._on_outcome,
            limits or ResultLimits(),
            events,
        )
        self._capacity = concurrency + self.pool.prefetch

    def free(self) -> int:
        """Return how many more attempts the slots (and the pool's prefetch) can take now."""
        return self._capacity - len(self._running)

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
        self.pool.submit(execution)

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

    def prefetched(self) -> list[Execution]:
        """Return the attempts claimed ahead that no slot has begun (none for a pool that
        does not prefetch: its slots begin what they are handed at once)."""
        if not self.pool.prefetch:
            return []
        with self._lock:
            return [e for e in self._running.values() if e.started is None]

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

    def abandon(
        self,
        execution: Execution,
        exception: type[Interrupted],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Stop a resolved attempt's handler and give its slot to a fresh one.

        ``then`` runs once the handler can no longer run: at once on the threads and asyncio
        pools (a thread stuck in C code cannot be waited for), after the child process is gone
        on the processes pool.
        """
        self.pool.stop(execution, exception, then)
        with self._lock:
            self._running.pop(execution.job.id, None)
        self._wake.set()

    def release(self, execution: Execution) -> None:
        """Stop a resolved attempt's handler at shutdown; it stays in flight until it ends."""
        self.pool.stop(execution, Interrupted)

    def cancel_requested(self, execution: Execution) -> None:
        """Tell ``execution``'s handler that its job was cancelled (``ctx.cancelled``)."""
        execution.context.mark_cancelled()
        self.pool.cancel_requested(execution)

    def close(self) -> None:
        """Let every slot end once it is idle."""
        self.pool.close()
