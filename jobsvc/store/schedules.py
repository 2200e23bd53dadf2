"""Periodic jobs in the database: the schedules workers registered, and one job per tick.

A tick's job is created in the same transaction as its ``schedule_ticks`` row, whose key is
(schedule, tick time): however many workers enqueue the same tick, the insert of all but the
first skips the taken key, and their transaction creates no job. PostgreSQL makes a second
inserter of a key wait for the first one's commit, then skip; SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal, select, tuple_, update
from sqlalchemy.engine import Engine

from ..models import Schedule, ScheduleTick
from ..schedules import InvalidSchedule, ScheduleSpec
from ..timestamps import db_now
from .execute import Executor, Transaction, translate_errors
from .insertion import batch_parameter, insert_statement
from .records import NewJob

schedules = Schedule.__table__
ticks = ScheduleTick.__table__

TICK_PRUNE_BATCH = 1_000  # schedule_ticks rows deleted per statement


@dataclass(frozen=True)
class ScheduleRecord:
    """A registered schedule as clients see it, with when it next runs."""

    name: str
    cron: str | None
    every_seconds: int | None
    timezone: str
    queue: str
    payload: Any
    last_tick_at: datetime | None
    next_run_at: datetime | None
    created_at: datetime
    seen_at: datetime


def _spec_changed(spec: ScheduleSpec) -> Any:
    return (
        schedules.c.cron.is_distinct_from(spec.cron)
        | schedules.c.every_seconds.is_distinct_from(spec.every_seconds)
        | (schedules.c.timezone != spec.timezone)
    )


def _every(row: Any) -> int | None:
    return None if row.every_seconds is None else int(row.every_seconds)


def _next_run(row: Any, now: datetime) -> datetime | None:
    try:
        spec = ScheduleSpec(row.name, row.cron, _every(row), row.timezone, row.queue)
    except InvalidSchedule:
        return None  # registered by a worker whose libraries knew a zone this one does not
    return spec.next_tick(now)


class ScheduleStore:
    """Registers schedules, enqueues their ticks and lists them; one method, one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._sql = Executor(engine)
        dialect = self._sql.dialect
        self._insert_job = self._sql.prepare(insert_statement(dialect))
        self._insert_tick = dialect.insert_ignoring_conflicts(ticks).returning(ticks.c.schedule)
        self._insert_schedule = dialect.insert_ignoring_conflicts(schedules)

    @staticmethod
    def _now(transaction: Transaction) -> datetime:
        return transaction.execute(select(db_now())).scalar_one()

    @translate_errors
    def register(self, specs: Sequence[ScheduleSpec]) -> dict[str, datetime | None]:
        """Record ``specs`` (a new or changed one starts at its next tick); return each one's
        newest enqueued tick."""
        if not specs:
            return {}
        with self._sql.write() as transaction:
            now = self._now(transaction)
            for spec in specs:
                latest = spec.latest_tick(now)
                fields = {
                    "cron": spec.cron,
                    "every_seconds": spec.every_seconds,
                    "timezone": spec.timezone,
                    "queue": spec.queue,
                    "payload": spec.payload,
                }
                transaction.execute(
                    self._insert_schedule.values(name=spec.name, last_tick_at=latest, **fields)
                )
                transaction.execute(
                    update(schedules)
                    .where(schedules.c.name == spec.name)
                    .values(
                        last_tick_at=case(
                            (_spec_changed(spec), literal(latest, schedules.c.last_tick_at.type)),
                            else_=schedules.c.last_tick_at,
                        ),
                        seen_at=db_now(),
                        **fields,
                    )
                )
            return self._last_ticks(transaction, [spec.name for spec in specs])[1]

    @translate_errors
    def last_ticks(self, names: Sequence[str]) -> tuple[datetime, dict[str, datetime | None]]:
        """Return the database's now and the newest enqueued tick of each of ``names``."""
        with self._sql.read() as transaction:
            return self._last_ticks(transaction, names)

    def _last_ticks(
        self, transaction: Transaction, names: Sequence[str]
    ) -> tuple[datetime, dict[str, datetime | None]]:
        now = self._now(transaction)
        rows = transaction.execute(
            select(schedules.c.name, schedules.c.last_tick_at).where(schedules.c.name.in_(names))
        )
        return now, {row.name: row.last_tick_at for row in rows}

    @translate_errors
    def enqueue_tick(self, spec: ScheduleSpec, tick_at: datetime, job: NewJob) -> int | None:
        """Create ``job`` for ``spec``'s tick at ``tick_at``; None if a worker did already."""
        with self._sql.write() as transaction:
            taken = transaction.run(self._insert_tick.values(schedule=spec.name, tick_at=tick_at))
            if not taken:
                return None
            (job_id,) = (
                row[0]
                for row in transaction.run(self._insert_job, {"batch": batch_parameter([job])})
            )
            transaction.execute(
                update(ticks)
                .where(ticks.c.schedule == spec.name, ticks.c.tick_at == tick_at)
                .values(job_id=job_id)
            )
            transaction.execute(
                update(schedules)
                .where(
                    schedules.c.name == spec.name,
                    schedules.c.last_tick_at.is_(None) | (schedules.c.last_tick_at < tick_at),
                )
                .values(last_tick_at=tick_at)
            )
            return job_id

    @translate_errors
    def list(self) -> list[ScheduleRecord]:
        """Return every registered schedule by name, with its next run time."""
        with self._sql.read() as transaction:
            now = self._now(transaction)
            rows = transaction.execute(select(schedules).order_by(schedules.c.name)).all()
        return [
            ScheduleRecord(
                name=row.name,
                cron=row.cron,
                every_seconds=_every(row),
                timezone=row.timezone,
                queue=row.queue,
                payload=row.payload,
                last_tick_at=row.last_tick_at,
                next_run_at=_next_run(row, now),
                created_at=row.created_at,
                seen_at=row.seen_at,
            )
            for row in rows
        ]

    @translate_errors
    def prune_ticks(self, older_than_seconds: float) -> int:
        """Delete up to TICK_PRUNE_BATCH tick keys older than that; return how many.

        A worker only enqueues ticks newer than the schedule's ``last_tick_at`` (kept in
        ``schedules``), so an old key guards nothing any more.
        """
        with self._sql.write() as transaction:
            cutoff = self._now(transaction) - timedelta(seconds=older_than_seconds)
            oldest = (
                select(ticks.c.schedule, ticks.c.tick_at)
                .where(ticks.c.tick_at < cutoff)
                .limit(TICK_PRUNE_BATCH)
            )
            key = tuple_(ticks.c.schedule, ticks.c.tick_at)
            return transaction.execute(delete(ticks).where(key.in_(oldest))).rowcount
