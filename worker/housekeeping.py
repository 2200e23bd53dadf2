"""Housekeeping chores of the worker's maintenance: priority aging and retention.

Each is cheap when it is off (never due) and runs in bounded batches when on; the store lets one
batch of each chore run at a time across all workers (``jobsvc.store.housekeeping``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from jobsvc.models import JobStatus
from jobsvc.store.housekeeping import HousekeepingStore
from jobsvc.store.schedules import ScheduleStore

from .events import Events

AGING_BATCH = 1_000  # ready jobs re-prioritised per transaction
AGING_BATCHES_PER_PASS = 10
AGING_PASS_MIN_SECONDS = 0.1
AGING_PASS_MAX_SECONDS = 60.0
PRUNE_BATCH = 1_000  # finished jobs deleted per transaction
PRUNE_BATCHES_PER_PASS = 5  # per status; the next pass comes soon while more are left
RETENTION_PASS_SECONDS = 60.0  # or half the shortest retention, if that is shorter
RETENTION_BUSY_PASS_SECONDS = 0.5  # the next pass while a status still had a full batch
# While a backlog is pruned, a worker spends at most this share of its time at it (and the
# database about as much of one connection's): the pause after a pass is 4x the pass.
PRUNE_DUTY_CYCLE = 0.2
TICK_KEYS_KEPT_SECONDS = 86_400.0  # schedule_ticks rows kept (a day of one-job-per-tick keys)


class PriorityAging:
    """Raises the stored priority of jobs that waited, one step per ``period_seconds``."""

    def __init__(self, store: HousekeepingStore, events: Events, period_seconds: float) -> None:
        self._store = store
        self._events = events
        self._period = period_seconds
        # A quarter period: a job is raised at most a quarter of a step late.
        self._every = min(max(period_seconds / 4, AGING_PASS_MIN_SECONDS), AGING_PASS_MAX_SECONDS)
        self._next = 0.0

    def run_due(self, now: float) -> None:
        """Age a few batches if a pass is due (DatabaseUnavailable if the database is away)."""
        if not self._period or now < self._next:
            return
        self._next = now + self._every
        for _ in range(AGING_BATCHES_PER_PASS):
            raised = self._store.age_priorities(self._period, AGING_BATCH)
            if raised:
                self._events.aged(raised)
            if raised is None or raised < AGING_BATCH:
                return  # another worker is at it, or nothing more is behind

    def next_due(self) -> float:
        """Return when the next pass is due (monotonic); 0.0 when aging is off."""
        return self._next if self._period else 0.0


class Retention:
    """Deletes finished jobs older than their status's retention, and old tick keys."""

    def __init__(
        self,
        store: HousekeepingStore,
        schedules: ScheduleStore,
        events: Events,
        retain_seconds: Mapping[JobStatus, float],
    ) -> None:
        self._store = store
        self._schedules = schedules
        self._events = events
        self._retain = {status: kept for status, kept in retain_seconds.items() if kept}
        self._every = min([RETENTION_PASS_SECONDS, *(kept / 2 for kept in self._retain.values())])
        self._next = 0.0

    def run_due(self, now: float) -> None:
        """Prune a few batches if a pass is due (DatabaseUnavailable if the database is away)."""
        if now < self._next:
            return
        self._next = now + self._every
        busy = False
        for status, kept in self._retain.items():
            for _ in range(PRUNE_BATCHES_PER_PASS):
                deleted = self._store.prune(status, kept, PRUNE_BATCH)
                if deleted:
                    self._events.pruned(status.value, deleted, kept)
                if deleted is None or deleted < PRUNE_BATCH:
                    break
            else:
                busy = True
        self._schedules.prune_ticks(TICK_KEYS_KEPT_SECONDS)
        if busy:
            took = time.monotonic() - now
            rest = took * (1 / PRUNE_DUTY_CYCLE - 1)
            self._next = now + took + max(min(self._every, RETENTION_BUSY_PASS_SECONDS), rest)

    def next_due(self) -> float:
        """Return when the next pass is due (monotonic)."""
        return self._next
