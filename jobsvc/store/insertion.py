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

from sqlalchemy import Float, Integer, func, insert, literal_column, select, true

from ..jobfields import COLUMN_FIELDS, batch_row
from ..models import Job
from ..timestamps import db_now, db_now_plus
from .dialects import Dialect
from .records import NewJob
from .sql import PENDING

jobs = Job.__table__

# Each enqueue field travels in the batch under its name and lands in its column, read with the
# column's own type (the dialect knows how a JSON or a timestamp column travels as JSON).
_BATCH_COLUMNS = tuple(
    (field.name, Float() if field.delay_of else jobs.c[field.name].type) for field in COLUMN_FIELDS
)
_COLUMNS = tuple(field.name for field in COLUMN_FIELDS if not field.delay_of)
_DELAYS = {field.delay_of: field.name for field in COLUMN_FIELDS if field.delay_of}
# What the row gets that no client sets: times from the database's clock, a fresh state.
_SERVER_SET = {
    "created_at": db_now(),
    "updated_at": db_now(),
    "status": PENDING,
    "attempts": literal_column("0"),
}


_TARGETS = list(_COLUMNS) + list(_SERVER_SET)
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


def _batch_rows(dialect: Dialect, *, upsert: bool = False, waiting: bool = False) -> Any:
    batch_columns = (*_BATCH_COLUMNS, _WAITING_COLUMN) if waiting else _BATCH_COLUMNS
    columns = (*_COLUMNS, _WAITING_COLUMN[0]) if waiting else _COLUMNS
    batch = dialect.json_rows("batch", batch_columns)
    values = [_value(name, batch) for name in columns]
    rows = select(*values, *_SERVER_SET.values()).select_from(batch.source)
    if upsert:  # SQLite cannot parse INSERT ... SELECT ... ON CONFLICT without a WHERE
        rows = rows.where(true())
    if batch.ordering is not None:  # else the rows come in the batch's order, and nothing
        rows = rows.order_by(batch.ordering)  # here (no join, no sort) reorders them
    return rows


def insert_statement(dialect: Dialect, *, waiting: bool = False) -> Any:
    """Return the INSERT ... SELECT that stores a batch of PENDING jobs, returning ids.

    ``waiting``: the batch also carries each job's ``waiting_count`` (jobs with parents).
    """
    targets = [*_COLUMNS, _WAITING_COLUMN[0]] if waiting else _COLUMNS
    rows = _batch_rows(dialect, waiting=waiting)
    return insert(jobs).from_select([*targets, *_SERVER_SET], rows).returning(jobs.c.id)


def unique_insert_statement(dialect: Dialect, *, waiting: bool = False) -> Any:
    """Return the same INSERT, skipping each job whose unique_key an active job holds already.

    The partial unique index decides, not a read before the write: of racing enqueues with one
    key exactly one inserts. It returns (id, unique_key) of the rows inserted only.
    ``waiting`` as for ``insert_statement``.
    """
    # No conflict target: the only unique index a new row can meet is the active-key one.
    statement = dialect.insert_ignoring_conflicts(jobs)
    targets = [*_COLUMNS, _WAITING_COLUMN[0], *_SERVER_SET] if waiting else _TARGETS
    rows = _batch_rows(dialect, upsert=True, waiting=waiting)
    return statement.from_select(targets, rows).returning(jobs.c.id, jobs.c.unique_key)
