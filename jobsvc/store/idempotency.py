"""Idempotency keys: which job an enqueue's key created, for which request, and when.

A keyed enqueue runs in one writing transaction: look the keys up, insert the jobs of the keys
not seen, then insert those keys with ``ON CONFLICT DO NOTHING``. A key another transaction
inserted meanwhile (a racing request with the same key) comes back missing: the caller rolls
back, its jobs with it, and tries again, when the lookup finds the winner's key. The unique
constraint decides, not the lookup, so racing requests create exactly one job.

Expired keys are deleted at insert: each keyed enqueue deletes up to ``EXPIRE_BATCH_KEYS`` of
the oldest expired ones (skipping rows another transaction is deleting), so the table stays
bounded without a sweeper and no enqueue pays for a large backlog at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, tuple_

from ..models import IdempotencyKey
from ..timestamps import db_now_plus
from .dialects import Dialect
from .execute import Transaction

keys = IdempotencyKey.__table__

EXPIRE_BATCH_KEYS = 100  # expired keys one keyed enqueue deletes, at most


@dataclass(frozen=True)
class IdempotencyClaim:
    """An enqueue's key, where it applies (one token, or everyone while no token exists), and
    the SHA-256 of the request it came with."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class KnownKey:
    """A key already stored: the request it came with and the job it created."""

    fingerprint: str
    job_id: int


class LostRace(Exception):
    """Another transaction stored one of these keys (or ended a duplicate's job) first."""


# A key created before now - kept seconds has expired.
_CUTOFF = db_now_plus(bindparam("since"))


class IdempotencyKeys:
    """The statements on idempotency_keys, run inside the enqueue's transaction."""

    def __init__(self, dialect: Dialect) -> None:
        self._insert = dialect.insert_ignoring_conflicts(keys).returning(keys.c.key)

    def find(
        self, transaction: Transaction, claims: Sequence[IdempotencyClaim], kept_seconds: float
    ) -> dict[tuple[str, str], KnownKey]:
        """Return the live keys among ``claims``; delete expired ones so they may be reused."""
        wanted = {(claim.scope, claim.key) for claim in claims}
        query = select(
            keys.c.id,
            keys.c.scope,
            keys.c.key,
            keys.c.fingerprint,
            keys.c.job_id,
            (keys.c.created_at < _CUTOFF).label("expired"),
        ).where(tuple_(keys.c.scope, keys.c.key).in_(sorted(wanted)))
        known: dict[tuple[str, str], KnownKey] = {}
        expired: list[int] = []
        for row in transaction.execute(query, {"since": -kept_seconds}):
            if row.expired:
                expired.append(row.id)
            else:
                known[(row.scope, row.key)] = KnownKey(row.fingerprint, row.job_id)
        if expired:
            transaction.execute(delete(keys).where(keys.c.id.in_(expired)))
        return known

    def remember(
        self, transaction: Transaction, created: Sequence[tuple[IdempotencyClaim, int]]
    ) -> None:
        """Store each claim with the job it created; raise ``LostRace`` if one was taken."""
        if not created:
            return
        rows = [
            {"scope": claim.scope, "key": claim.key, "fingerprint": claim.fingerprint, "job_id": i}
            for claim, i in created
        ]
        stored = transaction.execute(self._insert, rows).all()
        if len(stored) != len(rows):
            raise LostRace()

    @staticmethod
    def expire_some(transaction: Transaction, kept_seconds: float) -> int:
        """Delete up to ``EXPIRE_BATCH_KEYS`` of the oldest expired keys; return how many."""
        oldest = (
            select(keys.c.id)
            .where(keys.c.created_at < _CUTOFF)
            .order_by(keys.c.created_at)
            .limit(EXPIRE_BATCH_KEYS)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
        )
        result = transaction.execute(
            delete(keys).where(keys.c.id.in_(oldest.scalar_subquery())), {"since": -kept_seconds}
        )
        return result.rowcount
