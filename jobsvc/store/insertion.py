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

from sqlalchemy import Integer, func, insert, literal_column, select

from ..jobfields import COLUMN_FIELDS, batch_row
from ..models import Job
from ..timestamps import db_now
from .dialects import Dialect
from .records import NewJob
from .sql import PENDING

jobs = Job.__table__

# Each enqueue field travels in the batch under its name and lands in its column, read with the
# column's own type (the dialect knows how a JSON or a timestamp column travels as JSON).
_BATCH_COLUMNS = tuple((field.name, jobs.c[field.name].type) for field in COLUMN_FIELDS)
# What the row gets that no client sets: times from the database's clock, a fresh state.
_SERVER_SET = {
    "created_at": db_now(),
    "updated_at": db_now(),
    "status": PENDING,
    "attempts": literal_column("0"),
}


# Jobs with parents also carry how many of them are not DONE yet (see store/dependencies.py).
_WAITING_COLUMN = ("waiting_count", Integer())


def batch_parameter(new_jobs: Sequence[NewJob], waiting: Sequence[int] | None = None) -> str:
    """Return the JSON document that carries ``new_jobs`` (and their ``waiting`` counts)."""
    if waiting is None:
        return json.dumps([batch_row(job) for job in new_jobs])
    return json.dumps(
        [
            batch_row(job) | {"waiting_count": count}
            for job, count in zip(new_jobs, waiting, strict=True)
        ]
    )


def _value(name: str, batched: Any) -> Any:
    # A field the client left unset (null) takes its column's server default (run_at: now).
    default = jobs.c[name].server_default
    return batched if default is None else func.coalesce(batched, default.arg)


def insert_statement(dialect: Dialect, *, waiting: bool = False) -> Any:
    """Return the INSERT ... SELECT that stores a batch of PENDING jobs, returning ids.

    ``waiting``: the batch also carries each job's ``waiting_count`` (jobs with parents).
    """
    columns = (*_BATCH_COLUMNS, _WAITING_COLUMN) if waiting else _BATCH_COLUMNS
    batch = dialect.json_rows("batch", columns)
    values = [_value(name, batch.columns[name]) for name, _ in columns]
    rows = select(*values, *_SERVER_SET.values()).select_from(batch.source)
    if batch.ordering is not None:  # else the rows come in the batch's order, and nothing
        rows = rows.order_by(batch.ordering)  # here (no join, no sort) reorders them
    targets = [name for name, _ in columns] + list(_SERVER_SET)
    return insert(jobs).from_select(targets, rows).returning(jobs.c.id)
