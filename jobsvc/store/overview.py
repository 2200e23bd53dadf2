"""What an operator watches: ready backlog and its age per queue, throughput, busy workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Engine

from ..models import Job, JobStatus
from ..timestamps import db_now, db_now_plus, epoch_minute
from .execute import Executor, translate_errors
from .sql import ZERO

jobs = Job.__table__

FINISHED_STATUSES = (JobStatus.DONE, JobStatus.FAILED)


@dataclass(frozen=True)
class ReadyQueue:
    """A queue's jobs that could run now (PENDING, ``run_at`` reached)."""

    queue: str
    ready: int
    oldest_age_seconds: float  # how long the oldest of them has been ready


@dataclass(frozen=True)
class FinishedMinute:
    """How many jobs finished as DONE and as FAILED in one minute."""

    minute: int  # whole minutes since the epoch (UTC)
    done: int
    failed: int


@dataclass(frozen=True)
class BusyWorker:
    """A worker holding leases now, and the furthest its heartbeats have pushed them."""

    worker: str
    running: int
    lease_expires_at: datetime


class OverviewStore:
    """Read-only summaries for the dashboard and the metrics; one method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._sql = Executor(engine)

    @translate_errors
    def ready_queues(self) -> list[ReadyQueue]:
        """Return each queue with ready jobs: how many, and the oldest one's wait so far."""
        # Reads the partial ready index only (PENDING rows), never finished ones.
        query = (
            select(jobs.c.queue, func.count(), func.min(jobs.c.run_at), db_now())
            .where(
                jobs.c.status == JobStatus.PENDING,
                jobs.c.waiting_count == ZERO,  # the ready index's predicate
                jobs.c.run_at <= db_now(),
            )
            .group_by(jobs.c.queue)
            .order_by(jobs.c.queue)
        )
        with self._sql.read() as transaction:
            rows = transaction.execute(query).all()
        return [
            ReadyQueue(queue, count, max(0.0, (now - oldest).total_seconds()))
            for queue, count, oldest, now in rows
        ]

    @translate_errors
    def finished_per_minute(self, minutes: int = 60) -> tuple[int, list[FinishedMinute]]:
        """Return the current minute and, for each of the last ``minutes`` that had any, how many
        jobs finished DONE and FAILED; a range scan of ``ix_jobs_finished``."""
        minute = epoch_minute(jobs.c.finished_at)
        query = (
            select(minute, jobs.c.status, func.count())
            .where(
                jobs.c.finished_at >= db_now_plus(bindparam("back", -60.0 * minutes)),
                jobs.c.finished_at.is_not(None),
                jobs.c.status.in_(FINISHED_STATUSES),
            )
            .group_by(minute, jobs.c.status)
        )
        with self._sql.read() as transaction:
            rows = transaction.execute(query).all()
            now_minute = transaction.execute(select(epoch_minute(db_now()))).scalar_one()
        by_minute: dict[int, dict[JobStatus, int]] = {}
        for at, status, count in rows:
            by_minute.setdefault(int(at), {})[status] = count
        return int(now_minute), [
            FinishedMinute(at, counts.get(JobStatus.DONE, 0), counts.get(JobStatus.FAILED, 0))
            for at, counts in sorted(by_minute.items())
        ]

    @translate_errors
    def busy_workers(self) -> list[BusyWorker]:
        """Return the workers whose leases are live: how many jobs each runs, and until when."""
        query = (
            select(jobs.c.locked_by, func.count(), func.max(jobs.c.lease_expires_at))
            .where(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_expires_at > db_now())
            .group_by(jobs.c.locked_by)
            .order_by(jobs.c.locked_by)
        )
        with self._sql.read() as transaction:
            rows = transaction.execute(query).all()
        return [BusyWorker(worker or "?", count, expires) for worker, count, expires in rows]
