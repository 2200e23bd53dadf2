"""Maintenance: heartbeat, rescue and timeouts, each on its own schedule."""

from __future__ import annotations

import time

from jobsvc.store import LeaseStore, outcomes

from .completer import Completer, Report
from .errors import Interrupted, JobTimeout
from .events import Events
from .executor import Executor

RESCUE_EVERY_MIN_SECONDS = 0.05


class Maintenance:
    """Keeps the leases of the attempts in flight honest: renews them, rescues expired ones
    (any worker's), and stops attempts past their timeout."""

    def __init__(
        self,
        store: LeaseStore,
        executor: Executor,
        completer: Completer,
        events: Events,
        *,
        lease_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self._store = store
        self._executor = executor
        self._completer = completer
        self._events = events
        self._lease_seconds = lease_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._rescue_seconds = max(lease_seconds / 2, RESCUE_EVERY_MIN_SECONDS)
        self._next_heartbeat = 0.0
        self._next_rescue = 0.0

    def run_due(self) -> None:
        """Do whatever is due now; raises DatabaseUnavailable if the database is away."""
        now = time.monotonic()
        self._enforce_timeouts(now)
        if now >= self._next_heartbeat:
            self._heartbeat()
            self._next_heartbeat = now + self._heartbeat_seconds
        if now >= self._next_rescue:
            for rescued in self._store.rescue_expired():
                self._events.rescued(rescued)
            self._next_rescue = now + self._rescue_seconds

    def next_due(self) -> float:
        """Return when something is next due (monotonic), 0.0 if nothing is scheduled yet."""
        due = [
            when
            for when in (self._next_heartbeat, self._next_rescue, self._executor.nearest_deadline())
            if when
        ]
        return min(due, default=0.0)

    def _heartbeat(self) -> None:
        executions = [e for e in self._executor.in_flight() if not e.resolved]
        lost = self._store.heartbeat([e.job.lease for e in executions], self._lease_seconds)
        for execution in executions:
            if execution.job.id in lost and execution.resolve():
                self._events.lease_lost(execution.job)
                self._executor.abandon(execution, Interrupted)

    def _enforce_timeouts(self, now: float) -> None:
        for execution in self._executor.overdue(now):
            if not execution.resolve():
                continue
            job = execution.job
            self._completer.put(Report(outcomes.timed_out(job), job, execution.elapsed()))
            self._events.timed_out(job)
            self._executor.abandon(execution, JobTimeout)
