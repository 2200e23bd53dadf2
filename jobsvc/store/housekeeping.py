"""The workers' housekeeping statements: priority aging and retention, in bounded batches.

Each batch is one writing transaction that first takes the task's exclusive right (an
advisory transaction lock on PostgreSQL, the one writer lock on SQLite): however many workers
run the same task, one batch of it runs at a time, and a worker that finds the right taken
skips its turn instead of waiting.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, case, delete, func, literal_column, select, update
from sqlalchemy.engine import Engine

from ..jobfields import PRIORITY_RANGE
from ..models import Job, JobStatus
from ..timestamps import db_now_plus, periods_since
from .execute import Executor, translate_errors
from .sql import PENDING

jobs = Job.__table__


def _lock_key(task: str) -> int:
    # Any fixed 64-bit number works; every jobsvc process on one database must agree on it.
    return int.from_bytes(hashlib.sha256(task.encode()).digest()[:8], "big", signed=True)


AGING_LOCK_KEY = _lock_key("jobsvc-priority-aging")
RETENTION_LOCK_KEY = _lock_key("jobsvc-retention")
PRIORITY_MAX = PRIORITY_RANGE[1]


def _finished_before(status: JobStatus, older_than_seconds: float) -> object:
    # finished_at is set by every way into a terminal status; updated_at covers rows without it.
    finished = func.coalesce(jobs.c.finished_at, jobs.c.updated_at)
    return (jobs.c.status == literal_column(f"'{status.value}'")) & (
        finished < db_now_plus(-older_than_seconds)
    )


class HousekeepingStore:
    """Priority aging and retention; one method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._sql = Executor(engine)
        base = func.coalesce(jobs.c.original_priority, jobs.c.priority)
        due = base + periods_since(jobs.c.run_at, bindparam("period"))
        self._aged_priority = case((due > PRIORITY_MAX, PRIORITY_MAX), else_=due)
        self._base_priority = base

    @translate_errors
    def age_priorities(self, period_seconds: float, batch: int) -> int | None:
        """Raise by one step per ``period_seconds`` waited the priority of up to ``batch``
        ready jobs that are behind; return how many, or None if another worker is at it.

        The wait counts from ``run_at`` (when the job became ready); the priority the client
        asked for stays in ``original_priority``.
        """
        behind = (
            select(jobs.c.id)
            .where(
                jobs.c.status == PENDING,
                jobs.c.run_at <= db_now_plus(-bindparam("period")),
                jobs.c.priority < self._aged_priority,
            )
            .limit(batch)
        )
        statement = (
            update(jobs)
            .where(jobs.c.id.in_(behind.scalar_subquery()))
            .values(original_priority=self._base_priority, priority=self._aged_priority)
        )
        with self._sql.write() as transaction:
            if not self._sql.dialect.try_exclusive(transaction, AGING_LOCK_KEY):
                return None
            result = transaction.execute(statement, {"period": period_seconds})
            return result.rowcount

    @translate_errors
    def prune(
        self, status: JobStatus, older_than_seconds: float, batch: int, *, wait: bool = False
    ) -> int | None:
        """Delete up to ``batch`` jobs of terminal ``status`` finished longer ago than that;
        return how many, or None if another process is pruning (unless ``wait``)."""
        oldest = (
            select(jobs.c.id)
            .where(_finished_before(status, older_than_seconds))
            .order_by(jobs.c.id)
            .limit(batch)
        )
        with self._sql.write() as transaction:
            if not self._sql.dialect.try_exclusive(transaction, RETENTION_LOCK_KEY) and not wait:
                return None
            result = transaction.execute(
                delete(jobs).where(jobs.c.id.in_(oldest.scalar_subquery()))
            )
            return result.rowcount

    @translate_errors
    def count_prunable(self, status: JobStatus, older_than_seconds: float) -> int:
        """Return how many jobs ``prune`` would delete in all."""
        query = (
            select(func.count())
            .select_from(jobs)
            .where(_finished_before(status, older_than_seconds))
        )
        with self._sql.read() as transaction:
            return int(transaction.execute(query).scalar_one())
