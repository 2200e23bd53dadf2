"""The suite checks itself: every job it counts is DONE in the database, after one attempt."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, text

from .databases import BenchDatabase

_DONE_ONCE = text(
    "SELECT count(*) FROM jobs WHERE id IN :ids AND status = 'DONE' AND attempts = 1 "
    "AND lease_token IS NULL AND finished_at IS NOT NULL"
).bindparams(bindparam("ids", expanding=True))
_COUNT = text("SELECT count(*) FROM jobs WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
CHUNK = 10_000  # ids per query: SQLite limits bound parameters


class VerificationFailed(AssertionError):
    """The database does not hold what a workload claims it did."""


def _count(database: BenchDatabase, statement: object, ids: list[int]) -> int:
    total = 0
    with database.engine.connect() as connection:
        for start in range(0, len(ids), CHUNK):
            total += connection.execute(statement, {"ids": ids[start : start + CHUNK]}).scalar_one()
    return total


def done_exactly_once(database: BenchDatabase, ids: Iterable[int], what: str) -> int:
    """Raise unless every job of ``ids`` is DONE after exactly one attempt; return the count."""
    unique = sorted(set(ids))
    done = _count(database, _DONE_ONCE, unique)
    if done != len(unique):
        raise VerificationFailed(
            f"{what}: {len(unique) - done} of {len(unique)} jobs are not "
            "DONE after exactly one attempt"
        )
    return done


def stored(database: BenchDatabase, ids: list[int], what: str) -> int:
    """Raise unless every id returned by an enqueue names one stored job; return the count."""
    unique = sorted(set(ids))
    if len(unique) != len(ids):
        raise VerificationFailed(f"{what}: {len(ids) - len(unique)} duplicate ids returned")
    found = _count(database, _COUNT, unique)
    if found != len(unique):
        raise VerificationFailed(f"{what}: {len(unique) - found} returned ids are not stored")
    return found
