"""Maintenance: heartbeat, rescue, timeouts and cancellations, each on its own schedule."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from jobsvc.errors import DatabaseUnavailable
from jobsvc.store import LeaseStore, outcomes

from .completer import Completer, Report
from .errors import Cancelled, Interrupted, JobTimeout
from .events import Events
from .execution import Execution
from .executor import Executor
from .fencing import Fence

logger = logging.getLogger(__name__)

RESCUE_EVERY_MIN_SECONDS = 0.05
STOPPING_CHECK_SECONDS = 0.05  # how soon a cancelled handler's end is confirmed to the store


class Chore(Protocol):
    """A periodic task of the maintenance beside the leases: schedules, aging, retention."""

    def run_due(self, now: float) -> None:
        """Do the chore if it is due at ``now`` (monotonic)."""

    def next_due(self) -> float:
        """Return when it is next due (monotonic), 0.0 if never."""


def _handler_ended(execution: Execution) -> bool:
    # started before thread_id: begin() sets both, and unbind_thread() clears only thread_id.
    started = execution.started
    if started is None:
        return execution.resolved  # resolved before a slot began it: it never runs
    return execution.thread_id is None


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
        fence: Fence,
        cancel_check_seconds: float,
        cancel_grace_seconds: float,
        chores: Sequence[Chore] = (),
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
        self._fence = fence
        self._cancel_check_seconds = cancel_check_seconds
        self._cancel_grace_seconds = cancel_grace_seconds
        self._next_cancel_check = 0.0
        self._stopping: dict[int, tuple[Execution, float]] = {}  # cancelled: (attempt, stop at)
        self._chores = tuple(chores)

    def leased(self, job_ids: Iterable[int], sent: float) -> None:
        """Record that a claim sent at ``sent`` (monotonic) leased ``job_ids``."""
        self._fence.renewed(job_ids, sent)

    def notice_cancel(self) -> None:
        """A running job was cancelled (a notification said so): look at once."""
        self._next_cancel_check = 0.0

    def run_due(self) -> None:
        """Do whatever is due now; raises DatabaseUnavailable if the database is away."""
        now = time.monotonic()
        self._enforce_timeouts(now)
        if now >= self._next_cancel_check:
            self._next_cancel_check = now + self._cancel_check_seconds
            self._check_cancels([e for e in self._executor.in_flight() if not e.resolved])
        self._enforce_stopping(time.monotonic())
        if now >= self._next_heartbeat:
            self._heartbeat()
            self._next_heartbeat = now + self._heartbeat_seconds
        if now >= self._next_rescue:
            for rescued in self._store.rescue_expired():
                self._events.rescued(rescued)
            self._next_rescue = now + self._rescue_seconds
        for chore in self._chores:
            try:
                chore.run_due(now)
            except DatabaseUnavailable:
                raise
            except Exception:  # a chore's bug must not stop the worker serving jobs
                logger.exception("maintenance: %s failed; trying again later", type(chore).__name__)

    def next_due(self) -> float:
        """Return when something is next due (monotonic), 0.0 if nothing is scheduled yet."""
        scheduled = [self._next_heartbeat, self._next_rescue, self._executor.nearest_deadline()]
        scheduled.extend(chore.next_due() for chore in self._chores)
        if self._executor.busy():
            scheduled.append(self._next_cancel_check)
        if self._stopping:
            scheduled.append(time.monotonic() + STOPPING_CHECK_SECONDS)
        return min((when for when in scheduled if when), default=0.0)

    def _heartbeat(self) -> None:
        executions = [
            e
            for e in self._executor.in_flight()
            if not e.resolved and e.job.id not in self._stopping
        ]
        sent = time.monotonic()
        lost = self._store.heartbeat([e.job.lease for e in executions], self._lease_seconds)
        self._fence.renewed((e.job.id for e in executions if e.job.id not in lost), sent)
        lost_executions = [e for e in executions if e.job.id in lost]
        cancelled = self._check_cancels(lost_executions)
        for execution in lost_executions:
            if execution.job.id not in cancelled and execution.resolve():
                self._events.lease_lost(execution.job)  # rescued by another worker
                self._executor.abandon(execution, Interrupted)

    def _check_cancels(self, executions: list[Execution]) -> set[int]:
        """Tell the handlers of cancelled jobs among ``executions``; return their ids."""
        candidates = [e for e in executions if e.job.id not in self._stopping]
        cancelled = self._store.cancelled([e.job.lease for e in candidates])
        stop_at = time.monotonic() + self._cancel_grace_seconds
        for execution in candidates:
            if execution.job.id not in cancelled:
                continue
            self._events.cancelling(execution.job)
            execution.context.mark_cancelled()
            self._stopping[execution.job.id] = (execution, stop_at)
            if execution.started is None and execution.resolve():
                self._executor.abandon(execution, Cancelled)  # no slot began it: it never runs
        return cancelled

    def _enforce_stopping(self, now: float) -> None:
        """Stop cancelled handlers past their grace; confirm the ones that ended."""
        for job_id, (execution, stop_at) in list(self._stopping.items()):
            if _handler_ended(execution):
                self._store.confirm_stopped(execution.job.lease)
                del self._stopping[job_id]
            elif now >= stop_at and execution.resolve():
                self._executor.abandon(execution, Cancelled)

    def _enforce_timeouts(self, now: float) -> None:
        for execution in self._executor.overdue(now):
            if not execution.resolve():
                continue
            job = execution.job
            self._completer.put(Report(outcomes.timed_out(job), job, execution.elapsed()))
            self._events.timed_out(job)
            self._executor.abandon(execution, JobTimeout)
