"""The scheduler: enqueues the ticks of the schedules of this worker's handlers.

Every worker with a schedule's handler runs it; the store's key on (schedule, tick) makes one
job per tick however many do. Ticks are computed against the database's clock, read at each
pass, so workers whose clocks disagree still agree on which ticks are due. With no schedules
it does nothing at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from jobsvc.schedules import ScheduleSpec
from jobsvc.store import NewJob
from jobsvc.store.schedules import ScheduleStore

from .events import Events

logger = logging.getLogger(__name__)

TICK_SLACK_SECONDS = 0.01  # wake this long after a tick is due, so the database's now is past it
PASS_MAX_SECONDS = 30.0  # look at least this often (a schedule changed, the clock jumped)
RETRY_SECONDS = 1.0  # the next pass after one that failed

NewTickJob = Callable[[ScheduleSpec, datetime], NewJob]


class Scheduler:
    """Enqueues due ticks for ``specs``; ``run_due`` and ``next_due`` as Maintenance calls them."""

    def __init__(
        self,
        store: ScheduleStore,
        specs: Sequence[ScheduleSpec],
        new_job: NewTickJob,
        events: Events,
    ) -> None:
        self._store = store
        self._specs = tuple(specs)
        self._names = [spec.name for spec in self._specs]
        self._new_job = new_job
        self._events = events
        self._registered = False
        self._next = 0.0

    def run_due(self, now: float) -> None:
        """Enqueue the ticks due now; raises DatabaseUnavailable if the database is away."""
        if not self._specs or now < self._next:
            return
        self._next = now + RETRY_SECONDS  # if this pass fails
        if not self._registered:
            self._store.register(self._specs)
            self._registered = True
        db_now, last_ticks = self._store.last_ticks(self._names)
        for spec in self._specs:
            for tick_at in spec.due(last_ticks.get(spec.name), db_now):
                job_id = self._store.enqueue_tick(spec, tick_at, self._new_job(spec, tick_at))
                if job_id is not None:
                    self._events.scheduled(spec.name, job_id, tick_at.isoformat())
        wait = min(spec.next_tick(db_now) for spec in self._specs) - db_now
        self._next = now + min(
            max(wait.total_seconds(), 0.0) + TICK_SLACK_SECONDS, PASS_MAX_SECONDS
        )

    def next_due(self) -> float:
        """Return when the next pass is due (monotonic); 0.0 without schedules."""
        return self._next if self._specs else 0.0
