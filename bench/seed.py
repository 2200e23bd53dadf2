"""Filling the jobs table: through the store for ordinary sizes, set-based SQL for millions."""

from __future__ import annotations

from sqlalchemy import text

from jobsvc.store import JobStore, NewJob

from .databases import BenchDatabase

ENQUEUE_CHUNK = 1000  # jobs per store transaction when seeding through the store
SQL_CHUNK = 250_000  # rows per INSERT ... SELECT when seeding with SQL

NOOP = NewJob(type="noop", payload={}, queue="default", priority=0, max_attempts=3)

# The same rows the store's enqueue writes, made by the database in bulk.
_PG_INSERT = """
INSERT INTO jobs (type, queue, priority, status, payload, attempts, max_attempts,
                  run_at, created_at, updated_at, started_at, finished_at, result)
SELECT 'noop', 'default', 0, :status, '{}'::json, :attempts, 3, now(), now(), now(),
       CASE WHEN :finished THEN now() - make_interval(secs => :ago) END,
       CASE WHEN :finished THEN now() - make_interval(secs => :ago) END, NULL
FROM generate_series(1, :n)
"""
_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_SQLITE_INSERT = f"""
WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < :n)
INSERT INTO jobs (type, queue, priority, status, payload, attempts, max_attempts,
                  run_at, created_at, updated_at, started_at, finished_at, result)
SELECT 'noop', 'default', 0, :status, '{{}}', :attempts, 3, {_SQLITE_NOW}, {_SQLITE_NOW},
       {_SQLITE_NOW}, CASE WHEN :finished THEN {_SQLITE_NOW} - :ago END,
       CASE WHEN :finished THEN {_SQLITE_NOW} - :ago END, NULL
FROM series
"""


def enqueue_noops(database: BenchDatabase, count: int, job: NewJob = NOOP) -> list[int]:
    """Enqueue ``count`` jobs through ``JobStore.enqueue``; return their ids."""
    store = JobStore(database.engine)
    ids: list[int] = []
    for start in range(0, count, ENQUEUE_CHUNK):
        ids.extend(store.enqueue([job] * min(ENQUEUE_CHUNK, count - start)))
    return ids


def bulk_rows(
    database: BenchDatabase, count: int, *, finished: bool, finished_ago_seconds: float = 0.0
) -> None:
    """Insert ``count`` no-op rows, ready (PENDING) or finished (DONE, that long ago), with
    set-based SQL."""
    statement = text(_PG_INSERT if database.backend == "postgresql" else _SQLITE_INSERT)
    status, attempts = ("DONE", 1) if finished else ("PENDING", 0)
    for start in range(0, count, SQL_CHUNK):
        with database.engine.begin() as connection:
            connection.execute(
                statement,
                {
                    "n": min(SQL_CHUNK, count - start),
                    "status": status,
                    "attempts": attempts,
                    "finished": finished,
                    "ago": float(finished_ago_seconds),
                },
            )
    analyze(database)


def analyze(database: BenchDatabase) -> None:
    """Refresh the planner's statistics, as autovacuum would after a bulk load."""
    if database.backend == "postgresql":
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text("VACUUM ANALYZE jobs"))
    else:
        with database.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
