"""What clients do with jobs: enqueue, read, list, cancel, retry, count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from sqlalchemy import case, func, literal, select, text, update
from sqlalchemy.engine import Engine, Row

from ..errors import InvalidTransition, JobNotFound
from ..models import TERMINAL_STATUSES, Job, JobAttempt, JobStatus, WebhookDelivery
from ..timestamps import db_now
from .execute import Executor, Transaction, translate_errors
from .insertion import batch_parameter, insert_statement
from .records import AttemptRecord, DeliveryRecord, JobRecord, NewJob

jobs = Job.__table__
attempts = JobAttempt.__table__
deliveries = WebhookDelivery.__table__

CANCELLABLE = (JobStatus.PENDING, JobStatus.RUNNING)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
_RECORD_COLUMNS = [jobs.c[field.name] for field in fields(JobRecord) if field.name in jobs.c]
_ATTEMPT_COLUMNS = [attempts.c[field.name] for field in fields(AttemptRecord)]
_DELIVERY_COLUMNS = [deliveries.c[field.name] for field in fields(DeliveryRecord)]


def _record(row: Row[Any]) -> JobRecord:
    return JobRecord(**row._mapping)


class JobStore:
    """Reads and writes jobs for API clients; one method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = Executor(engine)
        self._insert = self._sql.prepare(insert_statement(self._sql.dialect))

    @translate_errors
    def enqueue(self, jobs_to_add: Sequence[NewJob]) -> list[int]:
        """Store new PENDING jobs and return their ids, in order."""
        if not jobs_to_add:
            return []
        # No notify_queues here: on PostgreSQL the insert trigger of migration 0002 sends one
        # NOTIFY per statement and queue within this round trip; SQLite workers see the commit.
        rows = self._sql.run_one(self._insert, {"batch": batch_parameter(jobs_to_add)})
        return sorted(row[0] for row in rows)  # ids rise in the batch's order

    @translate_errors
    def get(self, job_id: int) -> JobRecord:
        """Return the job with ``job_id``."""
        with self._sql.read() as transaction:
            return self._with_delivery(transaction, self._get(transaction, job_id))

    @translate_errors
    def attempts(self, job_id: int) -> list[AttemptRecord]:
        """Return the ended attempts of the job with ``job_id``, oldest first."""
        query = (
            select(*_ATTEMPT_COLUMNS)
            .where(attempts.c.job_id == job_id)
            # In the order they ended: a retry resets the job's attempt count, so numbers repeat.
            .order_by(attempts.c.id)
        )
        with self._sql.read() as transaction:
            rows = transaction.execute(query).all()
            if not rows:
                self._get(transaction, job_id)  # a job without attempts, or no job (404)
        return [AttemptRecord(**row._mapping) for row in rows]

    @translate_errors
    def ended(self, job_ids: Sequence[int]) -> set[int]:
        """Return those of ``job_ids`` that are DONE, FAILED or CANCELLED (one read by id)."""
        if not job_ids:
            return set()
        query = select(jobs.c.id).where(
            jobs.c.id.in_(list(job_ids)), jobs.c.status.in_(sorted(TERMINAL_STATUSES))
        )
        with self._sql.read() as transaction:
            return {row[0] for row in transaction.execute(query)}

    @staticmethod
    def _with_delivery(transaction: Transaction, record: JobRecord) -> JobRecord:
        if record.callback_url is None:
            return record
        query = (
            select(*_DELIVERY_COLUMNS)
            .where(deliveries.c.job_id == record.id)
            .order_by(deliveries.c.id.desc())
            .limit(1)
        )
        row = transaction.execute(query).first()
        if row is None:
            return record
        return replace(record, delivery=DeliveryRecord(**row._mapping))

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
            return [_record(row) for row in transaction.execute(query)]

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
            return self._with_delivery(transaction, record)

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
            self._sql.dialect.notify(transaction, {record.queue})
        return record

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
        """Return how many PENDING jobs ``queue`` holds, counting no further than ``up_to``."""
        # The LIMIT bounds the cost by the cap, not by the backlog: the partial ready index
        # yields the first up_to rows and the count stops there.
        waiting = (
            select(literal(1))
            .where(jobs.c.status == JobStatus.PENDING, jobs.c.queue == queue)
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
