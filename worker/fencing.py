"""Self-fencing: stop a handler whose lease this worker could not renew, before it expires.

While the database is unreachable the heartbeat fails, and once the lease expires another worker
rescues the job and runs it again. The first attempt must be gone by then. The watchdog runs on a
thread of its own: a heartbeat stuck in a dead TCP connection must not delay it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from .errors import LeaseUnrenewed
from .events import Events
from .executor import Executor

FENCE_MARGIN_SHARE = 0.1  # of the lease: the stop lands this long before the lease expires
IDLE_CHECK_SECONDS = 1.0  # how often the watchdog looks when nothing is due sooner


def fence_after(lease_seconds: float, heartbeat_seconds: float) -> float:
    """Return how long after a lease was last renewed its handler must be stopped.

    The lease runs from when the renewal was sent (the database's expiry is later, never
    earlier). The margin, max(10 % of the lease, half a heartbeat), leaves room for the stop
    to land, and with the usual heartbeat of lease/3 still lets a second heartbeat try first.
    """
    return lease_seconds - max(FENCE_MARGIN_SHARE * lease_seconds, heartbeat_seconds / 2)


class Fence:
    """Knows when each in-flight lease was last renewed, and stops the ones about to expire."""

    def __init__(
        self, executor: Executor, events: Events, *, lease_seconds: float, heartbeat_seconds: float
    ) -> None:
        self._executor = executor
        self._events = events
        self._after = fence_after(lease_seconds, heartbeat_seconds)
        self._renewed: dict[int, float] = {}  # job id -> monotonic time the renewal was sent
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fence", daemon=True)

    def start(self) -> None:
        """Start the watchdog thread."""
        self._thread.start()

    def renewed(self, job_ids: Iterable[int], sent: float) -> None:
        """Record that the leases of ``job_ids`` were granted or extended by a write sent at
        ``sent`` (monotonic)."""
        with self._lock:
            for job_id in job_ids:
                self._renewed[job_id] = sent

    def check(self, now: float) -> float:
        """Stop every attempt whose lease is about to expire; return when to look next."""
        with self._lock:  # held across the snapshot: a renewal recorded after it is kept
            running = {e.job.id: e for e in self._executor.in_flight()}
            for job_id in [i for i in self._renewed if i not in running]:
                del self._renewed[job_id]  # reported or abandoned: nothing left to fence
            due = {job_id: sent + self._after for job_id, sent in self._renewed.items()}
        for job_id, deadline in due.items():
            execution = running[job_id]
            if now >= deadline and execution.resolve():
                self._events.self_fenced(execution.job)
                self._executor.abandon(execution, LeaseUnrenewed)
        later = [deadline for deadline in due.values() if deadline > now]
        return min([*later, now + IDLE_CHECK_SECONDS])

    def close(self) -> None:
        """Stop the watchdog thread."""
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        next_check = time.monotonic()
        while not self._closed.wait(max(0.0, next_check - time.monotonic())):
            next_check = self.check(time.monotonic())
