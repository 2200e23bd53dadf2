"""The webhook outbox: claim due deliveries with a lease, then record how each try went.

Rows are added by migration 0004's trigger in the transaction that ends a job. A claim counts
the try and pushes ``next_attempt_at`` past the try's longest run (its lease): a worker killed
mid-delivery leaves the row pending, and any worker tries it again once that passes. The
outcome of a try is fenced by its number, so a try that outlived its lease records nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.engine import Engine

from ..models import DeliveryStatus, WebhookDelivery
from ..retry import RetryPolicy
from ..timestamps import db_now, db_now_plus
from .execute import Executor, translate_errors
from .jobs import _RECORD_COLUMNS, _record, jobs
from .records import JobRecord

deliveries = WebhookDelivery.__table__

ERROR_CHARS_MAX = 500  # of a failed try's error kept with the delivery


@dataclass(frozen=True)
class DueDelivery:
    """One try of a completion webhook, leased to this worker."""

    id: int
    job_id: int
    callback_url: str
    attempt: int  # this try's number, from 1
    job: JobRecord  # the job as it is now, the body of the POST


class DeliveryStore:
    """The worker's side of the outbox; one method is one transaction."""

    def __init__(self, engine: Engine, retry_policy: RetryPolicy) -> None:
        self.engine = engine
        self.retry_policy = retry_policy
        self._sql = Executor(engine)

    @translate_errors
    def claim_due(self, limit: int, lease_seconds: float) -> list[DueDelivery]:
        """Lease up to ``limit`` pending deliveries that are due, oldest first."""
        due = (
            select(deliveries.c.id)
            .where(
                deliveries.c.status == literal_column(f"'{DeliveryStatus.PENDING.value}'"),
                deliveries.c.next_attempt_at <= db_now(),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(deliveries)
            .where(deliveries.c.id.in_(due.scalar_subquery()))
            .values(
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=db_now_plus(bindparam("lease", lease_seconds)),
                updated_at=db_now(),
            )
            .returning(
                deliveries.c.id,
                deliveries.c.job_id,
                deliveries.c.callback_url,
                deliveries.c.attempts,
            )
        )
        with self._sql.write() as transaction:
            claimed = transaction.execute(claim).all()
            if not claimed:
                return []
            ids = [row.job_id for row in claimed]
            found = transaction.execute(select(*_RECORD_COLUMNS).where(jobs.c.id.in_(ids)))
            records = {record.id: record for record in map(_record, found)}
        return [
            DueDelivery(row.id, row.job_id, row.callback_url, row.attempts, records[row.job_id])
            for row in sorted(claimed, key=lambda row: row.id)
            if row.job_id in records
        ]

    @translate_errors
    def delivered(self, delivery: DueDelivery) -> bool:
        """Record that ``delivery``'s try was answered 2xx; False if its lease was lost."""
        return self._record(
            delivery,
            status=DeliveryStatus.DELIVERED.value,
            last_error=None,
            delivered_at=db_now(),
        )

    @translate_errors
    def failed(self, delivery: DueDelivery, error: str, *, final: bool) -> bool:
        """Record a failed try: tried again after a backoff, or, if ``final``, failed."""
        changes: dict[str, Any] = {"last_error": error[:ERROR_CHARS_MAX]}
        if final:
            changes["status"] = DeliveryStatus.FAILED.value
        else:
            delay = self.retry_policy.delay(delivery.attempt)
            changes["next_attempt_at"] = db_now_plus(bindparam("delay", delay))
        return self._record(delivery, **changes)

    def _record(self, delivery: DueDelivery, **changes: Any) -> bool:
        statement = (
            update(deliveries)
            .where(
                deliveries.c.id == delivery.id,
                deliveries.c.attempts == delivery.attempt,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .values(**changes, updated_at=db_now())
            .returning(deliveries.c.id)
        )
        return bool(self._sql.run_one(statement))

    @translate_errors
    def pending(self, job_ids: Sequence[int]) -> int:
        """Return how many deliveries of ``job_ids`` are still pending (for tests and ops)."""
        query = select(deliveries.c.id).where(
            deliveries.c.job_id.in_(list(job_ids)),
            deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        with self._sql.read() as transaction:
            return len(transaction.execute(query).all())
