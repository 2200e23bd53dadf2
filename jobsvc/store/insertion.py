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

from sqlalchemy import Float, func, insert, literal_column, select

from ..jobfields import ENQUEUE_FIELDS, batch_row
from ..models import Job
from ..timestamps import db_now, db_now_plus
from .dialects import Dialect
from .records import NewJob
from .sql import PENDING

jobs = Job.__table__

# Each enqueue field travels in the batch under its name and lands in its column, read with the
# column's own type (the dialect knows how a JSON or a timestamp column travels as JSON).
_BATCH_COLUMNS = tuple(
    (field.name, Float() if field.delay_of else jobs.c[field.name].type) for field in ENQUEUE_FIELDS
)
_COLUMNS = tuple(field.name for field in ENQUEUE_FIELDS if not field.delay_of)
_DELAYS = {field.delay_of: field.name for field in ENQUEUE_FIELDS if field.delay_of}
# What the row gets that no client sets: times from the database's clock, a fresh state.
_SERVER_SET = {
    "created_at": db_now(),
    "updated_at": db_now(),
    "status": PENDING,
    "attempts": literal_column("0"),
}


def batch_parameter(new_jobs: Sequence[NewJob]) -> str:
    """Return the JSON document that carries ``new_jobs`` into the statement."""
    return json.dumps([batch_row(job) for job in new_jobs])


def _value(name: str, batch: Any) -> Any:
    # A field the client left unset (null) takes its column's server default (run_at: now);
    # a time with a delay field takes now plus the delay before that (null plus is null).
    batched = batch.columns[name]
    default = jobs.c[name].server_default
    if default is None:
        return batched
    if name in _DELAYS:
        return func.coalesce(batched, db_now_plus(batch.columns[_DELAYS[name]]), default.arg)
    return func.coalesce(batched, default.arg)


def insert_statement(dialect: Dialect) -> Any:
    """Return the INSERT ... SELECT that stores a batch of PENDING jobs, returning ids."""
    batch = dialect.json_rows("batch", _BATCH_COLUMNS)
    values = [_value(name, batch) for name in _COLUMNS]
    rows = select(*values, *_SERVER_SET.values()).select_from(batch.source)
    if batch.ordering is not None:  # else the rows come in the batch's order, and nothing
        rows = rows.order_by(batch.ordering)  # here (no join, no sort) reorders them
    targets = list(_COLUMNS) + list(_SERVER_SET)
    return insert(jobs).from_select(targets, rows).returning(jobs.c.id)
