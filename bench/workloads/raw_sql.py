"""W0's raw half: the store's claim and completion SQL, by hand on a bare DB-API connection.

It mirrors ``LeaseStore.claim`` and ``LeaseStore.finish`` (Succeeded) statement for statement, so
the gap between it and the store is what SQLAlchemy and the store's Python cost.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ..databases import BenchDatabase, plain_url
from . import LEASE_SECONDS

WORKER_ID = "bench-w0-raw"
SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

PG_CLAIM = """
UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, lease_token = %(token)s,
    locked_by = %(worker)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
    started_at = now(), updated_at = now()
WHERE id IN (SELECT id FROM jobs WHERE status = 'PENDING' AND waiting_count = 0
             AND run_at <= now() AND queue IN ('default')
             ORDER BY priority DESC, run_at, id LIMIT %(limit)s
             FOR UPDATE SKIP LOCKED)
RETURNING id, type, queue, payload, attempts, max_attempts, timeout_seconds, priority, run_at
"""
PG_COMPLETE = """
WITH v(id, token, result) AS (VALUES {rows})
UPDATE jobs SET status = 'DONE', result = v.result, finished_at = now(), updated_at = now(),
    lease_token = NULL, lease_expires_at = NULL
FROM v WHERE jobs.id = v.id AND jobs.lease_token = v.token AND jobs.status = 'RUNNING'
RETURNING jobs.id
"""
PG_ROW = "(%s::bigint, %s::varchar, %s::json)"

SQLITE_CLAIM = f"""
UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, lease_token = :token,
    locked_by = :worker, lease_expires_at = {SQLITE_NOW} + :lease,
    started_at = {SQLITE_NOW}, updated_at = {SQLITE_NOW}
WHERE id IN (SELECT id FROM jobs WHERE status = 'PENDING' AND waiting_count = 0
             AND run_at <= {SQLITE_NOW} AND queue IN ('default')
             ORDER BY priority DESC, run_at, id LIMIT :limit)
RETURNING id, type, queue, payload, attempts, max_attempts, timeout_seconds, priority, run_at
"""
SQLITE_COMPLETE = f"""
WITH v(id, token, result) AS (VALUES {{rows}})
UPDATE jobs SET status = 'DONE', result = v.result, finished_at = {SQLITE_NOW},
    updated_at = {SQLITE_NOW}, lease_token = NULL, lease_expires_at = NULL
FROM v WHERE jobs.id = v.id AND jobs.lease_token = v.token AND jobs.status = 'RUNNING'
RETURNING id
"""
SQLITE_ROW = "(?, ?, ?)"


@contextmanager
def raw_claimer(database: BenchDatabase) -> Iterator[Callable[[int], list[int]]]:
    """Yield ``cycle(limit)``: claim up to ``limit`` jobs, complete them; return their ids."""
    if database.backend == "postgresql":
        with psycopg.connect(plain_url(database.url)) as connection:
            yield lambda limit: _pg_cycle(connection, limit)
        return
    connection = sqlite3.connect(database.engine.url.database or "", isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA synchronous = NORMAL")
        yield lambda limit: _sqlite_cycle(connection, limit)
    finally:
        connection.close()


def _pg_cycle(connection: psycopg.Connection[Any], limit: int) -> list[int]:
    token = uuid.uuid4().hex
    with connection.transaction():
        claimed = connection.execute(
            PG_CLAIM, {"token": token, "worker": WORKER_ID, "lease": LEASE_SECONDS, "limit": limit}
        ).fetchall()
    if not claimed:
        return []
    params = [value for row in claimed for value in (row[0], token, None)]
    with connection.transaction():
        sql = PG_COMPLETE.format(rows=", ".join([PG_ROW] * len(claimed)))
        return [row[0] for row in connection.execute(sql, params).fetchall()]


def _sqlite_cycle(connection: sqlite3.Connection, limit: int) -> list[int]:
    token = uuid.uuid4().hex
    connection.execute("BEGIN IMMEDIATE")
    claimed = connection.execute(
        SQLITE_CLAIM, {"token": token, "worker": WORKER_ID, "lease": LEASE_SECONDS, "limit": limit}
    ).fetchall()
    connection.execute("COMMIT")
    if not claimed:
        return []
    params = [value for row in claimed for value in (row[0], token, "null")]
    connection.execute("BEGIN IMMEDIATE")
    sql = SQLITE_COMPLETE.format(rows=", ".join([SQLITE_ROW] * len(claimed)))
    done = [row[0] for row in connection.execute(sql, params).fetchall()]
    connection.execute("COMMIT")
    return done
