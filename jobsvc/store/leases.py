"""What workers do with jobs: claim, heartbeat, finish, release, rescue (the lease protocol)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    func,
    literal_column,
    select,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.types import NullType

from ..models import Job, JobStatus, Queue
from ..retry import RetryPolicy
from ..timestamps import db_now, db_now_plus
from . import dependencies, outcomes
from .completion import batch_parameter, complete_statement
from .driver import DriverStatement
from .execute import Executor, Transaction, translate_errors
from .queues import QueueLimits, QueueLimitsCache, QueueStore
from .records import ClaimedJob, Failed, Lease, Outcome, Released, Rescued, Succeeded
from .sql import PENDING, RUNNING, ZERO

logger = logging.getLogger(__name__)

jobs = Job.__table__
queues_table = Queue.__table__

RESCUE_BATCH = 100  # expired leases handled per rescue transaction
ERROR_MESSAGE_MAX = 2000  # characters of last_error kept
# A queue at its concurrency gets room when some worker's outcome is stored, which no one is
# told of: a worker it held back looks again this soon (one short locked read).
CONCURRENCY_RECHECK_SECONDS = 0.05


class ClaimedJobs(list[ClaimedJob]):
    """The jobs one claim leased, by priority then age.

    ``retry_after_seconds``: when a queue whose limit held jobs back may have room again
    (None: no limit held any back).
    """

    retry_after_seconds: float | None = None


def _fenced(lease: Lease) -> Any:
    # Every write after the claim carries this: zero rows means the lease was lost.
    return (
        (jobs.c.id == lease.job_id)
        & (jobs.c.status == JobStatus.RUNNING)
        & (jobs.c.lease_token == lease.token)
    )


_CLEAR_LEASE = {"lease_token": None, "lease_expires_at": None}


def _claim_statement(queue_count: int | None, skipped_count: int = 0) -> Any:
    """The claim for any queue (``None``) or for ``queue_count`` named queues.

    One bound name per queue (``queue_0``...) rather than an expanding IN: the statement is then
    compiled once to the driver's SQL (see ``DriverStatement``) instead of re-rendered per call.
    A claim of any queue skips ``skipped_count`` queues (``skip_0``...): the paused and limited
    ones, which are claimed one by one under their row's lock.
    """
    ready = (
        select(jobs.c.id)
        .where(jobs.c.status == PENDING, jobs.c.waiting_count == ZERO, jobs.c.run_at <= db_now())
        .order_by(jobs.c.priority.desc(), jobs.c.run_at, jobs.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    if queue_count is not None:
        ready = ready.where(
            jobs.c.queue.in_([bindparam(f"queue_{index}") for index in range(queue_count)])
        )
    if skipped_count:
        ready = ready.where(
            jobs.c.queue.not_in([bindparam(f"skip_{index}") for index in range(skipped_count)])
        )
    return (
        update(jobs)
        .where(jobs.c.id.in_(ready.scalar_subquery()))
        .values(  # constants as literals: the driver statement binds only the names above
            status=RUNNING,
            attempts=jobs.c.attempts + literal_column("1"),
            lease_token=bindparam("claim_token"),
            locked_by=bindparam("claim_worker"),
            lease_expires_at=db_now_plus(bindparam("lease")),
            started_at=db_now(),
            updated_at=db_now(),
        )
        # In ClaimedJob's field order, then the sort keys; run_at raw (a datetime on
        # PostgreSQL, epoch seconds on SQLite): it is only compared, never shown.
        .returning(
            jobs.c.id,
            jobs.c.type,
            jobs.c.queue,
            jobs.c.payload,
            jobs.c.attempts,
            jobs.c.max_attempts,
            jobs.c.timeout_seconds,
            jobs.c.priority,
            type_coerce(jobs.c.run_at, NullType()),
        )
    )


_JOB_FIELDS = 7  # the returned columns that are ClaimedJob's fields, in order
_PAYLOAD = 3
_PRIORITY = itemgetter(7)
_AGE = itemgetter(8, 0)  # run_at, id


def ready_since(job: ClaimedJob) -> float | None:
    """Return when ``job`` became ready (its run_at) in epoch seconds, if the claim said."""
    raw = job.run_at
    if raw is None:
        return None
    return raw.timestamp() if isinstance(raw, datetime) else float(raw)


def _lost_successes(succeeded: Sequence[Succeeded], kept: set[int]) -> list[int]:
    """The ids of the successes the complete statement did not store: their lease was lost."""
    return [o.lease.job_id for o in succeeded if o.lease.job_id not in kept]


def _storable_text(text: str) -> str:
    # PostgreSQL text cannot hold NUL; an exception message with one must not cost the job its
    # real error (the outcome would be refused and replaced by a generic one).
    return text.replace("\x00", "\\x00")


class LeaseStore:
    """The worker's side of the store; one method is one transaction."""

    def __init__(self, engine: Engine, retry_policy: RetryPolicy) -> None:
        self.engine = engine
        self.retry_policy = retry_policy
        self._sql = Executor(engine)
        self._complete = self._sql.prepare(complete_statement(self._sql.dialect, parents=False))
        self._complete_parents = self._sql.prepare(
            complete_statement(self._sql.dialect, parents=True)
        )
        # By number of queues, and of queues skipped: built once per worker and shape.
        self._claims: dict[tuple[int | None, int], DriverStatement] = {}
        self._queue_limits = QueueLimitsCache(QueueStore(engine))

    @translate_errors
    def claim(
        self, queues: Sequence[str] | None, limit: int, worker_id: str, lease_seconds: float
    ) -> ClaimedJobs:
        """Lease up to ``limit`` ready jobs, by priority then age.

        Unpaused queues without limits take one statement, as if limits did not exist; a
        limited queue takes a transaction holding its row's lock; a paused queue, nothing.
        """
        if limit < 1:
            return ClaimedJobs()
        token = uuid.uuid4().hex  # one per claim: (id, token) names exactly one attempt
        params: dict[str, Any] = {
            "limit": limit,
            "claim_token": token,
            "claim_worker": worker_id,
            "lease": lease_seconds,
        }
        limited = self._queue_limits.current()
        if not limited:
            # One statement in autocommit, on the driver: the worker's hottest round trip,
            # where SQLAlchemy's execution path (and re-rendering the IN list) cost more
            # than the database.
            return self._claimed(self._claim_unlimited(queues, (), params), token)
        return self._claim_with_limits(queues, limited, params)

    def _claim_unlimited(
        self, queues: Sequence[str] | None, skipped: Sequence[str], params: dict[str, Any]
    ) -> list[Any]:
        if queues is not None:
            params.update((f"queue_{index}", name) for index, name in enumerate(queues))
        params.update((f"skip_{index}", name) for index, name in enumerate(skipped))
        return self._sql.run_one(self._claim_sql(queues, len(skipped)), params)

    def _claim_with_limits(
        self,
        queues: Sequence[str] | None,
        limited: Mapping[str, QueueLimits],
        params: dict[str, Any],
    ) -> ClaimedJobs:
        limit = params["limit"]
        served = (
            limited.values() if queues is None else [limited[q] for q in queues if q in limited]
        )
        rows: list[Any] = []
        waits: list[float] = []
        # The limited queues first: each takes no more than its limit allows, so the
        # unlimited ones still get the rest of the free slots.
        for queue in sorted(served, key=lambda q: q.name):
            if queue.paused or len(rows) >= limit:
                continue
            claimed, wait = self._claim_limited(queue.name, {**params, "limit": limit - len(rows)})
            rows.extend(claimed)
            if wait is not None:
                waits.append(wait)
        free = limit - len(rows)
        if free > 0:
            if queues is None:
                rows.extend(self._claim_unlimited(None, sorted(limited), {**params, "limit": free}))
            else:
                others = [q for q in queues if q not in limited]
                if others:
                    rows.extend(self._claim_unlimited(others, (), {**params, "limit": free}))
        result = self._claimed(rows, params["claim_token"])
        result.retry_after_seconds = min(waits, default=None)
        return result

    def _claim_limited(self, name: str, params: dict[str, Any]) -> tuple[list[Any], float | None]:
        """Claim from one limited queue holding its row's lock; return the rows and, if its
        limit held jobs back, when to look again.

        The lock orders every claim of the queue (PostgreSQL: FOR UPDATE; SQLite: its one
        writer), so the RUNNING count and the window's starts it reads stay true until it
        commits: no two workers can both take the last unit of room.
        """
        with self._sql.write() as transaction:
            row = transaction.execute(
                select(
                    queues_table.c.paused,
                    queues_table.c.concurrency,
                    queues_table.c.rate_limit_jobs,
                    queues_table.c.rate_limit_per_seconds,
                    queues_table.c.window_started_at,
                    queues_table.c.window_starts,
                    db_now().label("now"),
                )
                .where(queues_table.c.name == name)
                .with_for_update()
            ).first()
            if row is not None and row.paused:
                return [], None
            room, wait, window = self._room(transaction, name, row, params["limit"])
            if room <= 0:
                return [], wait
            rows = transaction.run(
                self._claim_sql([name], 0), {**params, "queue_0": name, "limit": room}
            )
            if window is not None and rows:
                started_at, starts = window
                transaction.execute(
                    update(queues_table)
                    .where(queues_table.c.name == name)
                    .values(window_started_at=started_at, window_starts=starts + len(rows))
                )
        return rows, wait if len(rows) == room < params["limit"] else None

    @staticmethod
    def _room(
        transaction: Transaction, name: str, row: Any, wanted: int
    ) -> tuple[int, float | None, tuple[Any, int] | None]:
        """How many may start now, when to look again if that is fewer than ``wanted``, and
        the rate window (its start, its starts so far) to record."""
        if row is None:
            return wanted, None, None  # its limits were removed since the worker read them
        room, wait, window = wanted, None, None
        if row.concurrency is not None:
            running = transaction.execute(
                select(func.count()).where(jobs.c.status == RUNNING, jobs.c.queue == name)
            ).scalar_one()
            if row.concurrency - running < room:
                room, wait = row.concurrency - running, CONCURRENCY_RECHECK_SECONDS
        if row.rate_limit_jobs is not None and row.rate_limit_per_seconds is not None:
            per = timedelta(seconds=row.rate_limit_per_seconds)
            started_at, starts = row.window_started_at, row.window_starts
            if started_at is None or row.now >= started_at + per:
                started_at, starts = row.now, 0  # a fixed window: the next one opens now
            window = (started_at, starts)
            if row.rate_limit_jobs - starts < room:
                room = row.rate_limit_jobs - starts
                opens_in = (started_at + per - row.now).total_seconds()
                wait = max(wait or 0.0, opens_in)
        return room, wait, window

    def _claimed(self, rows: list[Any], token: str) -> ClaimedJobs:
        # UPDATE ... RETURNING has no order: sort by age, then (a stable sort, reversed
        # stably) by priority, with C-level keys: a Python key per row cost more than the sort.
        rows.sort(key=_AGE)
        rows.sort(key=_PRIORITY, reverse=True)
        decode = self._sql.dialect.decode_json
        return ClaimedJobs(
            ClaimedJob(
                *row[:_PAYLOAD],
                decode(row[_PAYLOAD]),
                *row[_PAYLOAD + 1 : _JOB_FIELDS],
                lease_token=token,
                run_at=row[_JOB_FIELDS + 1],
            )
            for row in rows
        )

    def forget_queue_limits(self) -> None:
        """Read the queues' limits and pause flags again at the next claim."""
        self._queue_limits.forget()

    def _claim_sql(self, queues: Sequence[str] | None, skipped_count: int = 0) -> DriverStatement:
        key = (None if queues is None else len(queues), skipped_count)
        statement = self._claims.get(key)
        if statement is None:  # a worker serves one list of queues: built once per worker
            statement = self._sql.prepare(_claim_statement(*key))
            self._claims[key] = statement
        return statement

    @translate_errors
    def heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> set[int]:
        """Extend ``leases``; return the ids whose lease was lost (rescued or cancelled)."""
        if not leases:
            return set()
        pairs = [(lease.job_id, lease.token) for lease in leases]
        statement = (
            update(jobs)
            .where(
                jobs.c.status == JobStatus.RUNNING, tuple_(jobs.c.id, jobs.c.lease_token).in_(pairs)
            )
            .values(
                lease_expires_at=db_now_plus(bindparam("lease", lease_seconds)), updated_at=db_now()
            )
            .returning(jobs.c.id)
        )
        kept = {row[0] for row in self._sql.run_one(statement)}
        return {lease.job_id for lease in leases} - kept

    @translate_errors
    def cancelled(self, leases: Sequence[Lease]) -> set[int]:
        """Return the ids among ``leases`` whose job was cancelled (a cheap read by id).

        A cancel keeps the attempt's token on the row, and so does a retry right after it: a
        row that is no longer RUNNING but still carries the token was cancelled (a rescue
        clears the token).
        """
        if not leases:
            return set()
        pairs = [(lease.job_id, lease.token) for lease in leases]
        query = select(jobs.c.id).where(
            jobs.c.id.in_([job_id for job_id, _ in pairs]),  # the primary key: an index read
            tuple_(jobs.c.id, jobs.c.lease_token).in_(pairs),
            jobs.c.status != JobStatus.RUNNING,
        )
        with self._sql.read() as transaction:
            return {row[0] for row in transaction.execute(query)}

    @translate_errors
    def confirm_stopped(self, lease: Lease) -> bool:
        """Record that a cancelled attempt's handler is no longer running (fenced by its token).

        A retry sent while the attempt was stopping waits for the lease's expiry; from here it
        may run at once. Return False if the row no longer carries this attempt's lease.
        """
        statement = (
            update(jobs)
            .where(
                jobs.c.id == lease.job_id,
                jobs.c.lease_token == lease.token,
                jobs.c.status.in_((JobStatus.CANCELLED, JobStatus.PENDING)),
            )
            .values(
                run_at=case((jobs.c.status == JobStatus.PENDING, db_now()), else_=jobs.c.run_at),
                updated_at=db_now(),
                **_CLEAR_LEASE,
            )
            .returning(jobs.c.queue, jobs.c.status)
        )
        with self._sql.write() as transaction:
            row = transaction.execute(statement).first()
            if row is not None and row.status == JobStatus.PENDING:
                self._sql.dialect.notify(transaction, {row.queue})
        return row is not None

    @translate_errors
    def finish(self, outcomes: Sequence[Outcome]) -> list[int]:
        """Record attempts' outcomes in one transaction; return the ids whose lease was lost."""
        if not outcomes:
            return []
        succeeded = [o for o in outcomes if isinstance(o, Succeeded)]
        if len(succeeded) == len(outcomes):
            # The hot path, a flush of successes: the one statement is its own transaction.
            left = self._complete_successes(self._sql.run_one, succeeded)
            if not left:
                return []
            # Parents (and lost leases) were left alone: finish them with their children.
            with self._sql.write() as transaction:
                return self._complete_with_children(transaction, left)
        with self._sql.write() as transaction:
            # Every success of the flush in the same one statement, inside the transaction.
            lost = self._complete_with_children(transaction, succeeded) if succeeded else []
            released_queues: set[str] = set()
            failed_parents: list[int] = []
            for outcome in outcomes:
                if isinstance(outcome, Succeeded):
                    continue
                row = transaction.execute(self._outcome_statement(outcome)).first()
                if row is None:
                    lost.append(outcome.lease.job_id)
                elif isinstance(outcome, Released):
                    released_queues.add(row.queue)
                elif row.has_dependents and outcome.is_final:
                    failed_parents.append(outcome.lease.job_id)
            self._sql.dialect.notify(transaction, released_queues)
            self._cancel_dependents(transaction, failed_parents)
        return lost

    def _complete_successes(
        self, run: Callable[[Any, Any], list[Any]], succeeded: Sequence[Succeeded]
    ) -> list[Succeeded]:
        """Mark ``succeeded`` DONE alone; return those left: parents, and lost leases."""
        rows = run(self._complete, {"batch": batch_parameter(succeeded)})
        kept = {row[0] for row in rows}
        return [o for o in succeeded if o.lease.job_id not in kept]

    def _complete_with_children(
        self, transaction: Transaction, succeeded: Sequence[Succeeded]
    ) -> list[int]:
        """Mark ``succeeded`` DONE and count them off their children; return the lost ids."""
        rows = transaction.run(self._complete_parents, {"batch": batch_parameter(succeeded)})
        done = {row[0] for row in rows}
        # The completion returns ids only (on PostgreSQL it is the INSERT of the attempt rows).
        query = select(jobs.c.id).where(jobs.c.id.in_(done), jobs.c.has_dependents == true())
        parents = sorted(row[0] for row in transaction.execute(query)) if done else []
        dependencies.unblock_children(transaction, self._sql.dialect, parents)
        return _lost_successes(succeeded, done)

    def _cancel_dependents(self, transaction: Transaction, failed_ids: Sequence[int]) -> None:
        """Cancel what waits on jobs that just ended FAILED, in their transaction."""
        cancelled = dependencies.cancel_dependents(
            transaction, self._sql.dialect, failed_ids, JobStatus.FAILED
        )
        if cancelled:
            logger.info("cancelled %d jobs whose dependency failed", len(cancelled))

    def _outcome_statement(self, outcome: Outcome) -> Any:
        statement = (
            update(jobs)
            .where(_fenced(outcome.lease))
            .returning(jobs.c.queue, jobs.c.has_dependents)
        )
        if isinstance(outcome, Released):
            # Shutdown interrupted the attempt; it is not the job's fault, so it does not count.
            return statement.values(
                status=JobStatus.PENDING,
                attempts=jobs.c.attempts - 1,
                run_at=db_now(),
                updated_at=db_now(),
                **_CLEAR_LEASE,
            )
        return statement.values(**self._failure_changes(outcome))

    def _failure_changes(self, failure: Failed) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "last_error": _storable_text(failure.message)[:ERROR_MESSAGE_MAX],
            "error_type": _storable_text(failure.error_type),
            "error_traceback": (
                None if failure.traceback is None else _storable_text(failure.traceback)
            ),
            "updated_at": db_now(),
            **_CLEAR_LEASE,
        }
        if failure.is_final:
            changes.update(status=JobStatus.FAILED, finished_at=db_now())
        else:
            delay = self.retry_policy.delay(failure.attempt)
            changes.update(status=JobStatus.PENDING, run_at=db_now_plus(bindparam("delay", delay)))
        return changes

    @translate_errors
    def rescue_expired(self) -> list[Rescued]:
        """Send RUNNING jobs whose lease expired back through the retry rule (attempt counts)."""
        expired = (
            select(
                jobs.c.id,
                jobs.c.attempts,
                jobs.c.max_attempts,
                jobs.c.lease_token,
                jobs.c.locked_by,
            )
            .where(jobs.c.status == RUNNING, jobs.c.lease_expires_at < db_now())
            .order_by(jobs.c.lease_expires_at)
            .limit(RESCUE_BATCH)
            .with_for_update(skip_locked=True)
        )
        rescued: list[Rescued] = []
        failed_parents: list[int] = []
        with self._sql.write() as transaction:
            for row in transaction.execute(expired).all():
                one, is_parent = self._rescue_one(transaction, row)
                rescued.append(one)
                if is_parent and one.status == JobStatus.FAILED:
                    failed_parents.append(one.job_id)
            self._cancel_dependents(transaction, failed_parents)
        return rescued

    def _rescue_one(self, transaction: Transaction, row: Any) -> tuple[Rescued, bool]:
        """Apply the retry rule to one expired lease; return it, and whether it is a parent."""
        failure = outcomes.lease_expired(
            Lease(row.id, row.lease_token),
            attempt=row.attempts,
            max_attempts=row.max_attempts,
            locked_by=row.locked_by,
        )
        changes = self._failure_changes(failure)
        statement = (
            update(jobs)
            .where(_fenced(failure.lease))
            .values(**changes)
            .returning(jobs.c.has_dependents)
        )
        is_parent = bool(transaction.execute(statement).scalar())
        return outcomes.rescued(failure, changes["status"]), is_parent
