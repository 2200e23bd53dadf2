"""One INSERT for any number of new jobs, with the batch as a single JSON parameter.

A multi-row VALUES list makes a new statement text per batch size, which the driver parses
again every time (psycopg parses long statements uncached: a third of a 1,000-job enqueue).
Here the text never changes; each dialect unpacks the batch with its JSON table function, in
the batch's order, so the ids come back ascending in the order the jobs were given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.engine import Dialect

from ..models import Job
from ..timestamps import UTCDateTime, db_now
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


def _postgresql_rows() -> tuple[Any, Any, Any, Any]:
    rows = func.json_to_recordset(cast(bindparam("batch", type_=Text), JSON)).table_valued(
        column("type", String), column("payload", Text), column("queue", String),
        column("priority", Integer), column("max_attempts", Integer),
        column("timeout_seconds", Float), column("run_at", Float),
    ).render_derived(name="v", with_types=True)
    run_at = type_coerce(func.to_timestamp(rows.c.run_at), UTCDateTime())
    return rows, rows.c, cast(rows.c.payload, JSON), run_at


def _sqlite_rows() -> tuple[Any, Any, Any, Any]:
    each = func.json_each(bindparam("batch", type_=Text)).table_valued(
        "value", column("key", Integer)).alias("e")
    # Paths as literals: the statement's one bound parameter is the batch (see DriverStatement).
    values = {name: func.json_extract(each.c.value, literal_column(f"'$.{name}'")).label(name)
              for name in _FIELDS}

    class Columns:
        position = each.c.key  # the array index

    for name, expression in values.items():
        setattr(Columns, name, expression)
    # SQLite keeps JSON as text already; a CAST would give it numeric affinity.
    return each, Columns, type_coerce(values["payload"], JSON), values["run_at"]


def insert_statement(dialect: Dialect) -> Any:
    """Return the INSERT ... SELECT that stores a batch of PENDING jobs, returning ids."""
    source, c, payload, run_at = (
        _postgresql_rows() if dialect.name == "postgresql" else _sqlite_rows())
    rows = select(
        c.type, payload, c.queue, c.priority, c.max_attempts, c.timeout_seconds,
        func.coalesce(run_at, db_now()), db_now(), db_now(),
        PENDING, literal_column("0"),
    ).select_from(source)
    if dialect.name == "sqlite":
        rows = rows.order_by(c.position)
    # PostgreSQL's json_to_recordset yields the array in order and nothing here reorders it
    # (no join, no sort), so ids are drawn from the sequence in the batch's order.
    targets = ["type", "payload", "queue", "priority", "max_attempts", "timeout_seconds",
               "run_at", "created_at", "updated_at", "status", "attempts"]
    return insert(jobs).from_select(targets, rows).returning(jobs.c.id)
