"""Queues as things an operator manages: their settings, their statistics, the limits' cache.

A queue exists implicitly through its jobs; a row in ``queues`` holds what an operator set
(paused, concurrency, rate limit). The API, the CLI and the worker's claim read the same
functions here. Statistics read the partial indexes for live jobs (PENDING, RUNNING), so
their cost follows the live rows; only the finished counts read finished rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.engine import Engine

from ..errors import QueueNotFound
from ..models import Job, JobStatus, Queue
from ..timestamps import db_now
from .execute import Executor, Transaction, translate_errors
from .sql import PENDING, RUNNING, ZERO

jobs = Job.__table__
queues = Queue.__table__

# How long a worker trusts what it read of the queues' limits and pause flags. A pause, or a
# new limit, reaches every worker's claim within this (PostgreSQL workers hear of it at once,
# by NOTIFY); an unlimited, unpaused queue's claim pays for the feature only this one small
# read per period.
QUEUE_SETTINGS_SECONDS = 1.0
FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class _Keep:
    """The value of a setting left as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class RateLimit:
    """At most ``jobs`` starts in each window of ``per_seconds``."""

    jobs: int
    per_seconds: float


@dataclass(frozen=True)
class QueueLimits:
    """What the claim must respect for one queue."""

    name: str
    paused: bool
    concurrency: int | None
    rate_limit: RateLimit | None

    @property
    def limited(self) -> bool:
        return self.concurrency is not None or self.rate_limit is not None


@dataclass(frozen=True)
class QueueStats:
    """One queue as an operator sees it: its settings and what its jobs are doing."""

    name: str
    paused: bool
    concurrency: int | None
    rate_limit: RateLimit | None
    counts: Mapping[JobStatus, int]  # every status, zeros included
    running: int  # attempts running now (RUNNING rows)
    ready: int  # PENDING and due now; the rest of PENDING waits for its run_at
    oldest_ready_age_seconds: float | None  # how long the oldest ready job has been due


def _limits(row: Any) -> QueueLimits:
    rate = None
    if row.rate_limit_jobs is not None and row.rate_limit_per_seconds is not None:
        rate = RateLimit(row.rate_limit_jobs, row.rate_limit_per_seconds)
    return QueueLimits(row.name, bool(row.paused), row.concurrency, rate)


_SETTINGS = (
    queues.c.name,
    queues.c.paused,
    queues.c.concurrency,
    queues.c.rate_limit_jobs,
    queues.c.rate_limit_per_seconds,
)


class QueueStore:
    """Reads and writes queues' settings and statistics; one method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = Executor(engine)

    @translate_errors
    def list(self) -> list[QueueStats]:
        """Return every queue that has jobs or settings, by name."""
        with self._sql.read() as transaction:
            return _stats(transaction, None)

    @translate_errors
    def get(self, name: str) -> QueueStats:
        """Return the queue ``name``; raise ``QueueNotFound`` if it has no jobs nor settings."""
        with self._sql.read() as transaction:
            found = _stats(transaction, name)
        if not found:
            raise QueueNotFound(f"no queue is named {name!r}: it has no jobs and no settings")
        return found[0]

    @translate_errors
    def configure(
        self, name: str, *, concurrency: Any = KEEP, rate_limit: Any = KEEP
    ) -> QueueStats:
        """Set the queue's limits (``None`` removes one, ``KEEP`` leaves it); return it."""
        changes: dict[str, Any] = {}
        if concurrency is not KEEP:
            changes["concurrency"] = concurrency
        if rate_limit is not KEEP:
            changes["rate_limit_jobs"] = None if rate_limit is None else rate_limit.jobs
            changes["rate_limit_per_seconds"] = (
                None if rate_limit is None else rate_limit.per_seconds
            )
            # A new limit starts counting afresh.
            changes.update(window_started_at=None, window_starts=0)
        return self._change(name, changes)

    @translate_errors
    def set_paused(self, name: str, paused: bool) -> QueueStats:
        """Pause (no new attempts start; running ones finish) or resume the queue; return it."""
        return self._change(name, {"paused": paused})

    def _change(self, name: str, changes: dict[str, Any]) -> QueueStats:
        dialect = self._sql.dialect
        with self._sql.write() as transaction:
            transaction.execute(dialect.insert_ignoring_conflicts(queues).values(name=name))
            if changes:
                transaction.execute(
                    update(queues)
                    .where(queues.c.name == name)
                    .values(**changes, updated_at=db_now())
                )
            dialect.notify_queues_changed(transaction, name)
            if changes.get("paused") is False:
                dialect.notify(transaction, {name})  # its waiting jobs are ready again
            (found,) = _stats(transaction, name)
        return found

    @translate_errors
    def limited(self) -> dict[str, QueueLimits]:
        """Return the queues that are paused or limited, by name (a small table, one read)."""
        query = select(*_SETTINGS).where(
            or_(
                queues.c.paused,
                queues.c.concurrency.is_not(None),
                queues.c.rate_limit_jobs.is_not(None),
            )
        )
        with self._sql.read() as transaction:
            return {row.name: _limits(row) for row in transaction.execute(query)}


def _stats(transaction: Transaction, name: str | None) -> list[QueueStats]:
    now = transaction.execute(select(db_now())).scalar_one()
    settings = _settings(transaction, name)
    counts, ready, oldest = _live_counts(transaction, name, now)
    _finished_counts(transaction, name, counts)
    found: list[QueueStats] = []
    for queue in sorted(settings.keys() | {queue for queue, _ in counts}):
        limits = settings.get(queue) or QueueLimits(queue, False, None, None)
        by_status = {status: counts.get((queue, status), 0) for status in JobStatus}
        found.append(
            QueueStats(
                name=queue,
                paused=limits.paused,
                concurrency=limits.concurrency,
                rate_limit=limits.rate_limit,
                counts=by_status,
                running=by_status[JobStatus.RUNNING],
                ready=ready.get(queue, 0),
                oldest_ready_age_seconds=_age(now, oldest.get(queue)),
            )
        )
    return found


def _age(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else max(0.0, (now - since).total_seconds())


def _where_queue(query: Any, name: str | None) -> Any:
    return query if name is None else query.where(jobs.c.queue == name)


def _settings(transaction: Transaction, name: str | None) -> dict[str, QueueLimits]:
    query = select(*_SETTINGS)
    if name is not None:
        query = query.where(queues.c.name == name)
    return {row.name: _limits(row) for row in transaction.execute(query)}


def _live_counts(
    transaction: Transaction, name: str | None, now: datetime
) -> tuple[dict[tuple[str, JobStatus], int], dict[str, int], dict[str, datetime]]:
    # status as a literal: each query reads its partial index (ix_jobs_ready, ix_jobs_lease),
    # never a finished row.
    due = jobs.c.run_at <= now
    pending = _where_queue(
        select(
            jobs.c.queue,
            func.count(),
            func.sum(case((due, 1), else_=0)),
            func.min(case((due, jobs.c.run_at), else_=None)),
        )
        # waiting_count = 0 completes the ready index's predicate: jobs waiting on parents are
        # not counted (they are not ready; counting them would scan past the index).
        .where(jobs.c.status == PENDING, jobs.c.waiting_count == ZERO)
        .group_by(jobs.c.queue),
        name,
    )
    counts: dict[tuple[str, JobStatus], int] = {}
    ready: dict[str, int] = {}
    oldest: dict[str, datetime] = {}
    for queue, count, due_count, earliest in transaction.execute(pending):
        counts[(queue, JobStatus.PENDING)] = count
        ready[queue] = int(due_count or 0)
        if earliest is not None:
            oldest[queue] = _as_datetime(earliest, now)
    running = _where_queue(
        select(jobs.c.queue, func.count()).where(jobs.c.status == RUNNING).group_by(jobs.c.queue),
        name,
    )
    for queue, count in transaction.execute(running):
        counts[(queue, JobStatus.RUNNING)] = count
    return counts, ready, oldest


def _as_datetime(value: Any, now: datetime) -> datetime:
    # min() over a CASE loses the column's type on SQLite (epoch seconds come back raw).
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), now.tzinfo)


def _finished_counts(
    transaction: Transaction, name: str | None, counts: dict[tuple[str, JobStatus], int]
) -> None:
    # The one read whose cost grows with finished rows: a scan of them (retention bounds it).
    query = _where_queue(
        select(jobs.c.queue, jobs.c.status, func.count())
        .where(jobs.c.status.in_(FINISHED))
        .group_by(jobs.c.queue, jobs.c.status),
        name,
    )
    for queue, status, count in transaction.execute(query):
        counts[(queue, JobStatus(status))] = count


class QueueLimitsCache:
    """What a worker knows of the queues' limits, read again every ``QUEUE_SETTINGS_SECONDS``.

    One read at a time: threads claiming together share it rather than each reading.
    """

    def __init__(
        self,
        store: QueueStore,
        max_age_seconds: float = QUEUE_SETTINGS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_age = max_age_seconds
        self._clock = clock
        self._limits: dict[str, QueueLimits] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> dict[str, QueueLimits]:
        """Return the paused or limited queues, read at most ``max_age_seconds`` ago."""
        now = self._clock()
        read_at = self._read_at
        if read_at is None or now - read_at >= self._max_age:
            with self._lock:
                if self._read_at is read_at:
                    self._limits = self._store.limited()
                    self._read_at = now
        return self._limits

    def forget(self) -> None:
        """Read the limits again at the next claim."""
        self._read_at = None


__all__ = [
    "KEEP",
    "QUEUE_SETTINGS_SECONDS",
    "QueueLimits",
    "QueueLimitsCache",
    "QueueStats",
    "QueueStore",
    "RateLimit",
]
