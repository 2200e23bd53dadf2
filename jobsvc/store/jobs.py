"""What clients do with jobs: enqueue, read, list, cancel, retry, count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from sqlalchemy import case, func, literal, select, text, update
from sqlalchemy.engine import Engine, Row

from ..errors import InvalidTransition, JobNotFound, ParentsRefused
from ..models import Job, JobStatus
from ..timestamps import db_now
from . import dependencies
from .execute import Executor, Transaction, translate_errors
from .insertion import batch_parameter, insert_statement
from .records import JobRecord, NewJob
from .sql import PENDING, ZERO

jobs = Job.__table__

CANCELLABLE = (JobStatus.PENDING, JobStatus.RUNNING)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
_RECORD_COLUMNS = [jobs.c[field.name] for field in fields(JobRecord) if field.name in jobs.c]


def _record(row: Row[Any]) -> JobRecord:
    return JobRecord(**row._mapping)


def _with_waiting_on(transaction: Transaction, records: list[JobRecord]) -> list[JobRecord]:
    # Only waiting jobs cost the second (indexed) read: the rest wait on nothing.
    waiting = {
        record.id
        for record in records
        if record.waiting_count > 0 and record.status is JobStatus.PENDING
    }
    if not waiting:
        return records
    found = dependencies.waiting_on(transaction, waiting)
    return [
        replace(record, waiting_on=found[record.id]) if record.id in found else record
        for record in records
    ]


def _refusals(new_jobs: Sequence[NewJob], statuses: dict[int, JobStatus]) -> dict[int, list[str]]:
    """Why each job's depends_on cannot be kept, by the job's index; empty if all can."""
    refused: dict[int, list[str]] = {}
    for index, job in enumerate(new_jobs):
        parents = job.depends_on or ()
        unknown = [parent for parent in parents if parent not in statuses]
        ended = [p for p in parents if statuses.get(p) in dependencies.ENDED_BADLY]
        why = []
        if unknown:
            why.append(f"No job has id {', '.join(map(str, unknown))}.")
        if ended:
            why.extend(
                f"Job {parent} ended {statuses[parent].value}; retry it before depending on it."
                for parent in ended
            )
        if why:
            refused[index] = why
    return refused


class JobStore:
    """Reads and writes jobs for API clients; one method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = Executor(engine)
        self._insert = self._sql.prepare(insert_statement(self._sql.dialect))
        self._insert_waiting = insert_statement(self._sql.dialect, waiting=True)

    @translate_errors
    def enqueue(self, jobs_to_add: Sequence[NewJob]) -> list[int]:
        """Store new PENDING jobs and return their ids, in order.

        Raises ``ParentsRefused`` if a job's ``depends_on`` names an unknown job, or one that
        ended FAILED or CANCELLED; then none is stored.
        """
        if not jobs_to_add:
            return []
        if any(job.depends_on for job in jobs_to_add):
            return self._enqueue_children(jobs_to_add)
        # No notify_queues here: on PostgreSQL the insert trigger of migration 0002 sends one
        # NOTIFY per statement and queue within this round trip; SQLite workers see the commit.
        rows = self._sql.run_one(self._insert, {"batch": batch_parameter(jobs_to_add)})
        return sorted(row[0] for row in rows)  # ids rise in the batch's order

    def _enqueue_children(self, jobs_to_add: Sequence[NewJob]) -> list[int]:
        """Store jobs some of which have parents: lock the parents, insert, add the edges."""
        dialect = self._sql.dialect
        named = {parent for job in jobs_to_add for parent in job.depends_on or ()}
        with self._sql.write() as transaction:
            statuses = dependencies.lock_parents(transaction, dialect, named)
            refused = _refusals(jobs_to_add, statuses)
            if refused:
                raise ParentsRefused(refused)
            waiting = [
                sum(statuses[p] is not JobStatus.DONE for p in job.depends_on or ())
                for job in jobs_to_add
            ]
            batch = batch_parameter(jobs_to_add, waiting)
            # The insert trigger (PostgreSQL) wakes workers: a waiting child is not claimable,
            # so a wake-up for one costs an idle worker one empty claim.
            ids = sorted(row[0] for row in transaction.run(self._insert_waiting, {"batch": batch}))
            pairs = [
                (child, parent)
                for child, job in zip(ids, jobs_to_add, strict=True)
                for parent in job.depends_on or ()
            ]
            dependencies.add_edges(transaction, dialect, pairs)
        return ids

    @translate_errors
    def get(self, job_id: int) -> JobRecord:
        """Return the job with ``job_id``."""
        with self._sql.read() as transaction:
            return _with_waiting_on(transaction, [self._get(transaction, job_id)])[0]

    @translate_errors
    def list(
        self,
        *,
        status: JobStatus | None = None,
        queue: str | None = None,
        job_type: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Return jobs newest first, optionally filtered, ``before_id`` for the next page."""
        query = select(*_RECORD_COLUMNS).order_by(jobs.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(jobs.c.status == status)
        if queue is not None:
            query = query.where(jobs.c.queue == queue)
        if job_type is not None:
            query = query.where(jobs.c.type == job_type)
        if before_id is not None:
            query = query.where(jobs.c.id < before_id)
        with self._sql.read() as transaction:
            records = [_record(row) for row in transaction.execute(query)]
            return _with_waiting_on(transaction, records)

    @translate_errors
    def cancel(self, job_id: int) -> JobRecord:
        """Cancel a PENDING or RUNNING job; a running attempt's outcome is then dropped.

        A running attempt's lease (token and expiry) stays on the row until its worker confirms
        the handler stopped (``LeaseStore.confirm_stopped``): a retry must not start a second
        attempt while the first may still run.
        """
        changes = {"status": JobStatus.CANCELLED, "finished_at": db_now()}
        with self._sql.write() as transaction:
            record = self._transition_in(transaction, job_id, CANCELLABLE, changes, "cancel")
            if record.lease_token is not None:
                self._sql.dialect.notify_cancel(transaction, job_id)
            if record.has_dependents:
                dependencies.cancel_dependents(
                    transaction, self._sql.dialect, [job_id], JobStatus.CANCELLED
                )
        return record

    @translate_errors
    def retry(self, job_id: int) -> JobRecord:
        """Send a FAILED or CANCELLED job back to PENDING with a fresh set of attempts.

        A job cancelled while running whose worker has not confirmed the stop yet becomes
        claimable only when that attempt's lease expires (or the worker confirms, sooner).
        """
        stopping = jobs.c.lease_token.is_not(None) & (jobs.c.lease_expires_at > db_now())
        changes = {
            "status": JobStatus.PENDING,
            "attempts": 0,
            "run_at": case((stopping, jobs.c.lease_expires_at), else_=db_now()),
            "finished_at": None,
            "result": None,
        }
        with self._sql.write() as transaction:
            record = self._transition_in(transaction, job_id, RETRYABLE, changes, "retry")
            record = self._wait_again(transaction, record)
            self._sql.dialect.notify(transaction, {record.queue})
        return record

    def _wait_again(self, transaction: Transaction, record: JobRecord) -> JobRecord:
        """Count a retried job's parents that are not DONE now; refuse if one ended badly.

        Its dependents that were cancelled stay cancelled: each may be retried in turn.
        """
        parents = dependencies.parents_of(transaction, record.id)
        if not parents:
            return record
        statuses = dependencies.lock_parents(transaction, self._sql.dialect, parents)
        ended = [p for p in parents if statuses.get(p) in dependencies.ENDED_BADLY]
        if ended:  # raising rolls the retry back
            raise InvalidTransition(
                f"cannot retry job {record.id}: job {ended[0]}, which it depends on, is "
                f"{statuses[ended[0]].value}; retry that job first",
                job_status=record.status.value,
            )
        waiting = tuple(p for p in parents if statuses.get(p) is not JobStatus.DONE)
        transaction.execute(
            update(jobs).where(jobs.c.id == record.id).values(waiting_count=len(waiting))
        )
        return replace(record, waiting_count=len(waiting), waiting_on=waiting)

    @translate_errors
    def counts(self) -> dict[tuple[str, JobStatus], int]:
        """Return how many jobs each (queue, status) holds."""
        query = select(jobs.c.queue, jobs.c.status, func.count()).group_by(
            jobs.c.queue, jobs.c.status
        )
        with self._sql.read() as transaction:
            return {(queue, status): count for queue, status, count in transaction.execute(query)}

    @translate_errors
    def count_waiting(self, queue: str, up_to: int) -> int:
        """Return how many ready PENDING jobs ``queue`` holds, counting no further than ``up_to``.

        Children waiting for parents are not counted: they are outside the ready index.
        """
        # The LIMIT bounds the cost by the cap, not by the backlog: the partial ready index
        # yields the first up_to rows and the count stops there.
        waiting = (
            select(literal(1))
            .where(jobs.c.status == PENDING, jobs.c.waiting_count == ZERO, jobs.c.queue == queue)
            .limit(up_to)
            .subquery()
        )
        with self._sql.read() as transaction:
            return transaction.execute(select(func.count()).select_from(waiting)).scalar_one()

    @translate_errors
    def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` unless the database answers."""
        with self._sql.read() as transaction:
            transaction.execute(text("SELECT 1"))

    @translate_errors
    def unwritable_reason(self) -> str | None:
        """Return why the database cannot take writes (read-only, disk full), or None."""
        with self._sql.read() as transaction:
            return self._sql.dialect.unwritable_reason(transaction.connection)

    def _transition(
        self, job_id: int, allowed: tuple[JobStatus, ...], changes: dict[str, Any], verb: str
    ) -> JobRecord:
        with self._sql.write() as transaction:
            return self._transition_in(transaction, job_id, allowed, changes, verb)

    def _transition_in(
        self,
        transaction: Transaction,
        job_id: int,
        allowed: tuple[JobStatus, ...],
        changes: dict[str, Any],
        verb: str,
    ) -> JobRecord:
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_(allowed))
            .values(**changes, updated_at=db_now())
            .returning(*_RECORD_COLUMNS)
        )
        row = transaction.execute(statement).first()
        if row is not None:
            return _record(row)
        current = self._get(transaction, job_id)
        raise InvalidTransition(
            f"cannot {verb} a job that is {current.status.value}; "
            f"{verb} applies to {' or '.join(s.value for s in allowed)} jobs",
            job_status=current.status.value,
        )

    @staticmethod
    def _get(transaction: Transaction, job_id: int) -> JobRecord:
        row = transaction.execute(select(*_RECORD_COLUMNS).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"no job has id {job_id}")
        return _record(row)
