"""The optional cap on waiting jobs per queue, checked before an enqueue."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from ..errors import QueueFull
from ..store import JobStore, NewJob

# How long a queue's count (read from the ready index) is trusted: keeps the count off the hot
# path. Jobs this process accepts meanwhile are added to it, so a burst cannot overshoot the cap
# by much; jobs claimed meanwhile are not subtracted, so a refusal is checked against a fresh
# count first (at most one read per queue per REFUSAL_RECHECK_SECONDS).
COUNT_CACHE_SECONDS = 0.25
REFUSAL_RECHECK_SECONDS = 0.05
QUEUE_FULL_RETRY_AFTER_SECONDS = 5
MAX_CACHED_QUEUES = 10_000  # clients name queues freely; forget them all past this many


class ReadyCap:
    """Refuses enqueues to a queue that already holds ``max_waiting`` PENDING jobs."""

    def __init__(
        self, store: JobStore, max_waiting: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.max_waiting = max_waiting
        self.clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # queue -> (count, read at)
        self._lock = threading.Lock()

    def admit(self, new_jobs: Iterable[NewJob]) -> None:
        """Raise ``QueueFull`` if any target queue is full; else count the new jobs in."""
        if self.max_waiting <= 0:
            return
        adding = Counter(job.queue for job in new_jobs)
        full = sorted(queue for queue in adding if self._is_full(queue))
        if full:
            raise QueueFull(
                f"queue {full[0]!r} holds {self.max_waiting} or more waiting "
                "jobs, its cap; try again later",
                queue=full[0],
                retry_after_seconds=QUEUE_FULL_RETRY_AFTER_SECONDS,
            )
        with self._lock:
            for queue, number in adding.items():
                count, read_at = self._counts.get(queue, (0, self.clock()))
                self._counts[queue] = (count + number, read_at)

    def _is_full(self, queue: str) -> bool:
        count, read_at = self._count(queue, COUNT_CACHE_SECONDS)
        if count < self.max_waiting:
            return False
        if self.clock() - read_at >= REFUSAL_RECHECK_SECONDS:
            count, _ = self._count(queue, 0.0)  # workers may have drained it meanwhile
        return count >= self.max_waiting

    def _count(self, queue: str, max_age: float) -> tuple[int, float]:
        now = self.clock()
        with self._lock:
            cached = self._counts.get(queue)
        if cached is not None and now - cached[1] < max_age:
            return cached
        count = self.store.count_waiting(queue, self.max_waiting)
        with self._lock:
            if len(self._counts) >= MAX_CACHED_QUEUES:
                self._counts.clear()
            self._counts[queue] = (count, now)
        return count, now
