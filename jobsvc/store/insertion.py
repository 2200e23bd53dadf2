"""One INSERT for any number of new jobs, with the batch as a single JSON parameter.

A multi-row VALUES list makes a new statement text per batch size, which the driver parses
again every time (psycopg parses long statements uncached: a third of a 1,000-job enqueue).
Here the text never changes; the dialect unpacks the batch with its JSON table function, in
the batch's order, so the ids come back ascending in the order the jobs were given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, func, insert, literal_column, select

from ..models import Job
from ..timestamps import UTCDateTime, db_now
from .dialects import Dialect
from .records import NewJob
from .sql import PENDING

jobs = Job.__table__

_FIELDS = ("type", "payload", "queue", "priority", "max_attempts", "timeout_seconds", "run_at")


def batch_parameter(new_jobs: Sequence[NewJob]) -> str:
    """Return the JSON document that carries ``new_jobs`` into the statement."""
    return json.dumps([
        {"type": job.type,
         "payload": job.payload_json if job.payload_json is not None else json.dumps(job.payload),
         "queue": job.queue,
         "priority": job.priority, "max_attempts": job.max_attempts,
         "timeout_seconds": job.timeout_seconds,
         "run_at": None if job.run_at is None else job.run_at.timestamp()}
        for job in new_jobs
    ])


# A JSON field holds JSON text; run_at holds epoch seconds (see json_rows).
_BATCH_COLUMNS = tuple(zip(_FIELDS, (String(), JSON(), String(), Integer(), Integer(), Float(),
                                     UTCDateTime()), strict=True))


def insert_statement(dialect: Dialect) -> Any:
    """Return the INSERT ... SELECT that stores a batch of PENDING jobs, returning ids."""
    batch = dialect.json_rows("batch", _BATCH_COLUMNS)
    c = batch.columns
    rows = select(
        c["type"], c["payload"], c["queue"], c["priority"], c["max_attempts"],
        c["timeout_seconds"], func.coalesce(c["run_at"], db_now()), db_now(), db_now(),
        PENDING, literal_column("0"),
    ).select_from(batch.source)
    if batch.ordering is not None:  # else the rows come in the batch's order, and nothing
        rows = rows.order_by(batch.ordering)  # here (no join, no sort) reorders them
    targets = ["type", "payload", "queue", "priority", "max_attempts", "timeout_seconds",
               "run_at", "created_at", "updated_at", "status", "attempts"]
    return insert(jobs).from_select(targets, rows).returning(jobs.c.id)
