"""What clients do with jobs: enqueue, read, list, cancel, retry, count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, func, literal, select, text, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError

from ..errors import (
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InvalidTransition,
    JobNotFound,
    ParentsRefused,
)
from ..models import TERMINAL_STATUSES, Job, JobAttempt, JobStatus, WebhookDelivery
from ..timestamps import db_now
from . import dependencies
from .execute import Executor, Transaction, is_deadlock, translate_errors
from .idempotency import IdempotencyClaim, IdempotencyKeys, KnownKey, LostRace
from .insertion import batch_parameter, insert_statement, unique_insert_statement
from .records import AttemptRecord, DeliveryRecord, Enqueued, JobRecord, NewJob
from .selection import BULK_BATCH_MAX, BulkResult, JobSelection
from .sql import PENDING, RUNNING, ZERO

jobs = Job.__table__
attempts = JobAttempt.__table__
deliveries = WebhookDelivery.__table__

CANCELLABLE = (JobStatus.PENDING, JobStatus.RUNNING)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
DEFAULT_KEYS_KEPT_SECONDS = 86_400.0  # JOBSVC_IDEMPOTENCY_SECONDS's default
RACE_ATTEMPTS = 5  # transactions a keyed enqueue tries before it answers "try again"
_RECORD_COLUMNS = [jobs.c[field.name] for field in fields(JobRecord) if field.name in jobs.c]
_ATTEMPT_COLUMNS = [attempts.c[field.name] for field in fields(AttemptRecord)]
_DELIVERY_COLUMNS = [deliveries.c[field.name] for field in fields(DeliveryRecord)]


def _record(row: Row[Any]) -> JobRecord:
    return JobRecord(**row._mapping)


def _retry_changes() -> dict[str, Any]:
    # A job cancelled while running whose worker has not confirmed the stop yet becomes
    # claimable only when that attempt's lease expires (or the worker confirms, sooner).
    stopping = jobs.c.lease_token.is_not(None) & (jobs.c.lease_expires_at > db_now())
    return {
        "status": JobStatus.PENDING,
        "attempts": 0,
        "run_at": case((stopping, jobs.c.lease_expires_at), else_=db_now()),
        "finished_at": None,
        "result": None,
    }


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
        self._unique_insert = self._sql.prepare(unique_insert_statement(self._sql.dialect))
        self._keys = IdempotencyKeys(self._sql.dialect)
        self._insert_waiting = insert_statement(self._sql.dialect, waiting=True)
        self._unique_insert_waiting = unique_insert_statement(self._sql.dialect, waiting=True)

    @translate_errors
    def enqueue(self, jobs_to_add: Sequence[NewJob]) -> list[int]:
        """Store new PENDING jobs and return their ids, in order.

        A job whose unique_key an active job holds is not stored: its id is that job's
        (``enqueue_checked`` says which ones). Raises ``ParentsRefused`` if a job's
        ``depends_on`` names an unknown job, or one that ended FAILED or CANCELLED; then none
        is stored.
        """
        if not jobs_to_add:
            return []
        if any(job.unique_key is not None for job in jobs_to_add):
            return [enqueued.id for enqueued in self.enqueue_checked(jobs_to_add)]
        if any(job.depends_on for job in jobs_to_add):
            with self._sql.write() as transaction:
                return [enqueued.id for enqueued in self._insert_children(transaction, jobs_to_add)]
        # No notify_queues here: on PostgreSQL the insert trigger of migration 0002 sends one
        # NOTIFY per statement and queue within this round trip; SQLite workers see the commit.
        rows = self._sql.run_one(self._insert, {"batch": batch_parameter(jobs_to_add)})
        return sorted(row[0] for row in rows)  # ids rise in the batch's order

    def _insert_children(
        self, transaction: Transaction, jobs_to_add: Sequence[NewJob]
    ) -> list[Enqueued]:
        """Store jobs some of which have parents: lock the parents, insert, add the edges.

        A job whose unique_key an active job holds is not stored, and gets no edges: the job
        that holds the key keeps its own parents.
        """
        dialect = self._sql.dialect
        named = {parent for job in jobs_to_add for parent in job.depends_on or ()}
        statuses = dependencies.lock_parents(transaction, dialect, named)
        refused = _refusals(jobs_to_add, statuses)
        if refused:
            raise ParentsRefused(refused)
        waiting = [
            sum(statuses[p] is not JobStatus.DONE for p in job.depends_on or ())
            for job in jobs_to_add
        ]
        batch = {"batch": batch_parameter(jobs_to_add, waiting)}
        # The insert trigger (PostgreSQL) wakes workers: a waiting child is not claimable,
        # so a wake-up for one costs an idle worker one empty claim.
        if all(job.unique_key is None for job in jobs_to_add):
            ids = sorted(row[0] for row in transaction.run(self._insert_waiting, batch))
            results = [Enqueued(job_id, JobStatus.PENDING, created=True) for job_id in ids]
        else:
            rows = transaction.execute(self._unique_insert_waiting, batch).all()
            results = self._unique_results(transaction, jobs_to_add, rows)
        pairs = [
            (enqueued.id, parent)
            for enqueued, job in zip(results, jobs_to_add, strict=True)
            if enqueued.created
            for parent in job.depends_on or ()
        ]
        dependencies.add_edges(transaction, dialect, pairs)
        return results

    @translate_errors
    def enqueue_checked(
        self,
        jobs_to_add: Sequence[NewJob],
        claims: Sequence[IdempotencyClaim | None] | None = None,
        *,
        keys_kept_seconds: float = DEFAULT_KEYS_KEPT_SECONDS,
    ) -> list[Enqueued]:
        """Store new jobs unless a key stands for one already, all in one transaction.

        ``claims`` holds each job's idempotency key (or None): a key seen with the same request
        answers the job it created (``replayed``), with another request raises
        ``IdempotencyKeyReused``. A job whose unique_key an active job holds answers that job
        (``duplicate``). Racing enqueues with one key store exactly one job.
        """
        claims = list(claims) if claims is not None else [None] * len(jobs_to_add)
        if len(claims) != len(jobs_to_add):
            raise ValueError("one claim (or None) per job")
        for _ in range(RACE_ATTEMPTS):
            try:
                with self._sql.write() as transaction:
                    return self._enqueue_in(transaction, jobs_to_add, claims, keys_kept_seconds)
            except LostRace:
                continue  # rolled back: the next lookup sees what the winner stored
            except DBAPIError as exc:
                # Batches racing with the same unique keys in different orders wait on each
                # other's inserts; PostgreSQL breaks the cycle by rolling one back.
                if not is_deadlock(exc):
                    raise
        raise DatabaseUnavailable("enqueues with the same keys keep racing; try again")

    @translate_errors
    def enqueue_in(self, transaction: Transaction, jobs_to_add: Sequence[NewJob]) -> list[Enqueued]:
        """Store new jobs inside the caller's transaction (unique keys apply, no claims)."""
        try:
            return self._enqueue_in(transaction, jobs_to_add, [None] * len(jobs_to_add), 0.0)
        except LostRace:
            # Only the caller can retry its own transaction.
            raise DatabaseUnavailable(
                "the active job holding this unique_key finished meanwhile; roll back and retry"
            ) from None

    def _enqueue_in(
        self,
        transaction: Transaction,
        jobs_to_add: Sequence[NewJob],
        claims: Sequence[IdempotencyClaim | None],
        keys_kept_seconds: float,
    ) -> list[Enqueued]:
        results: list[Enqueued | None] = [None] * len(jobs_to_add)
        keyed = [(index, claim) for index, claim in enumerate(claims) if claim is not None]
        if keyed:
            self._keys.expire_some(transaction, keys_kept_seconds)
            known = self._keys.find(transaction, [c for _, c in keyed], keys_kept_seconds)
            replayed = self._replays(transaction, keyed, known)
            for index, enqueued in replayed.items():
                results[index] = enqueued
        fresh = [index for index, found in enumerate(results) if found is None]
        inserted = self._insert_unique(transaction, [jobs_to_add[index] for index in fresh])
        for index, enqueued in zip(fresh, inserted, strict=True):
            results[index] = enqueued
        fresh_set = set(fresh)
        self._keys.remember(
            transaction,
            [(claim, results[index].id) for index, claim in keyed if index in fresh_set],  # type: ignore[union-attr]
        )
        return results  # type: ignore[return-value]

    def _replays(
        self,
        transaction: Transaction,
        keyed: Sequence[tuple[int, IdempotencyClaim]],
        known: dict[tuple[str, str], KnownKey],
    ) -> dict[int, Enqueued]:
        hits = {}
        for index, claim in keyed:
            found = known.get((claim.scope, claim.key))
            if found is None:
                continue
            if found.fingerprint != claim.fingerprint:
                raise IdempotencyKeyReused(claim.key, found.job_id)
            hits[index] = found.job_id
        if not hits:
            return {}
        query = select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(set(hits.values())))
        statuses = dict(transaction.execute(query).all())
        return {
            index: Enqueued(job_id, statuses.get(job_id), created=False, replayed=True)
            for index, job_id in hits.items()
        }

    def _insert_unique(
        self, transaction: Transaction, jobs_to_add: Sequence[NewJob]
    ) -> list[Enqueued]:
        if not jobs_to_add:
            return []
        if any(job.depends_on for job in jobs_to_add):
            return self._insert_children(transaction, jobs_to_add)
        batch = {"batch": batch_parameter(jobs_to_add)}
        if all(job.unique_key is None for job in jobs_to_add):
            ids = sorted(row[0] for row in transaction.execute(self._insert, batch))
            return [Enqueued(job_id, JobStatus.PENDING, created=True) for job_id in ids]
        rows = transaction.execute(self._unique_insert, batch).all()
        return self._unique_results(transaction, jobs_to_add, rows)

    def _unique_results(
        self, transaction: Transaction, jobs_to_add: Sequence[NewJob], rows: Sequence[Any]
    ) -> list[Enqueued]:
        """What each job of a unique insert became: stored, or the active job holding its key."""
        new_ids = iter(sorted(job_id for job_id, _ in rows))  # ascending in the batch's order
        by_key = {key: job_id for job_id, key in rows if key is not None}
        existing = self._active_by_key(
            transaction, {j.unique_key for j in jobs_to_add if j.unique_key not in by_key} - {None}
        )
        results, seen = [], set()
        for job in jobs_to_add:
            key = job.unique_key
            if key is None or (key in by_key and key not in seen):
                seen.add(key)
                results.append(Enqueued(next(new_ids), JobStatus.PENDING, created=True))
            elif key in by_key:  # a second job with a key the batch itself just stored
                results.append(Enqueued(by_key[key], JobStatus.PENDING, False, duplicate=True))
            else:
                job_id, status = existing[key]
                results.append(Enqueued(job_id, status, created=False, duplicate=True))
        return results

    @staticmethod
    def _active_by_key(
        transaction: Transaction, unique_keys: set[str | None]
    ) -> dict[str, tuple[int, JobStatus]]:
        if not unique_keys:
            return {}
        query = select(jobs.c.unique_key, jobs.c.id, jobs.c.status).where(
            jobs.c.unique_key.in_(sorted(unique_keys)),  # type: ignore[type-var]
            jobs.c.status.in_([PENDING, RUNNING]),
        )
        found = {key: (job_id, status) for key, job_id, status in transaction.execute(query)}
        if len(found) != len(unique_keys):
            # The conflicting job finished between the insert and this read: insert again.
            raise LostRace()
        return found

    @translate_errors
    def get(self, job_id: int) -> JobRecord:
        """Return the job with ``job_id``."""
        with self._sql.read() as transaction:
            record = _with_waiting_on(transaction, [self._get(transaction, job_id)])[0]
            return self._with_delivery(transaction, record)

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
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
        without: frozenset[str] = frozenset(),
    ) -> list[JobRecord]:
        """Return jobs newest first, optionally filtered, ``before_id`` for the next page.

        Columns named in ``without`` (payload, result...) are not read: they come back None.
        """
        selection = JobSelection(
            status=status,
            queue=queue,
            job_type=job_type,
            created_after=created_after,
            created_before=created_before,
        )
        columns = [
            literal(None).label(column.name) if column.name in without else column
            for column in _RECORD_COLUMNS
        ]
        query = (
            select(*columns).where(selection.condition()).order_by(jobs.c.id.desc()).limit(limit)
        )
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
            return self._with_delivery(transaction, record)

    @translate_errors
    def retry(self, job_id: int) -> JobRecord:
        """Send a FAILED or CANCELLED job back to PENDING with a fresh set of attempts.

        A job cancelled while running whose worker has not confirmed the stop yet becomes
        claimable only when that attempt's lease expires (or the worker confirms, sooner).
        """
        with self._sql.write() as transaction:
            record = self._transition_in(transaction, job_id, RETRYABLE, _retry_changes(), "retry")
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
    def cancel_many(self, selection: JobSelection, limit: int = BULK_BATCH_MAX) -> BulkResult:
        """Cancel up to ``limit`` of the selected PENDING or RUNNING jobs, oldest first.

        As ``cancel``: a running attempt keeps its lease until its worker confirms the stop,
        and its worker hears of it at once (NOTIFY on PostgreSQL).
        """
        changes = {"status": JobStatus.CANCELLED, "finished_at": db_now()}
        with self._sql.write() as transaction:
            rows, more = self._bulk(transaction, selection, CANCELLABLE, changes, limit)
            for job_id, _, lease_token in rows:
                if lease_token is not None:
                    self._sql.dialect.notify_cancel(transaction, job_id)
        return BulkResult(len(rows), more)

    @translate_errors
    def retry_many(self, selection: JobSelection, limit: int = BULK_BATCH_MAX) -> BulkResult:
        """Send up to ``limit`` of the selected FAILED or CANCELLED jobs back to PENDING, as
        ``retry`` does, oldest first."""
        with self._sql.write() as transaction:
            rows, more = self._bulk(transaction, selection, RETRYABLE, _retry_changes(), limit)
            if rows:
                self._sql.dialect.notify(transaction, {queue for _, queue, _ in rows})
        return BulkResult(len(rows), more)

    @staticmethod
    def _bulk(
        transaction: Transaction,
        selection: JobSelection,
        allowed: tuple[JobStatus, ...],
        changes: dict[str, Any],
        limit: int,
    ) -> tuple[list[Row[Any]], bool]:
        matching = selection.condition() & jobs.c.status.in_(allowed)
        batch = select(jobs.c.id).where(matching).order_by(jobs.c.id).limit(limit)
        statement = (
            update(jobs)
            # The status again: a worker may have finished a job since the batch was read.
            .where(jobs.c.id.in_(batch.scalar_subquery()), jobs.c.status.in_(allowed))
            .values(**changes, updated_at=db_now())
            .returning(jobs.c.id, jobs.c.queue, jobs.c.lease_token)
        )
        rows = transaction.execute(statement).all()
        more = transaction.execute(select(exists().where(matching))).scalar_one()
        return rows, bool(more)

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
