"""One statement that completes a whole flush of succeeded attempts, fenced row by row.

The batch travels as one JSON parameter (``[{"job_id", "token", "result"}, ...]``, each result
already JSON text), so the statement's text, and its compiled and prepared forms, are the same
for every batch size. Each dialect unpacks it with its own JSON table function.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    String,
    Text,
    bindparam,
    cast,
    column,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Dialect

from ..models import Job, JobStatus
from ..timestamps import db_now
from .records import Succeeded
from .sql import RUNNING

jobs = Job.__table__


def batch_parameter(outcomes: Sequence[Succeeded]) -> str:
    """Return the JSON document that carries ``outcomes`` into the statement."""
    return json.dumps([
        {"job_id": o.lease.job_id, "token": o.lease.token,
         "result": (o.result_json if o.result_json is not None
                    else json.dumps(o.result, allow_nan=False))}
        for o in outcomes
    ])


def _postgresql_rows() -> Any:
    rows = func.json_to_recordset(cast(bindparam("batch", type_=Text), JSON)).table_valued(
        column("job_id", BigInteger), column("token", String), column("result", Text),
    ).render_derived(name="v", with_types=True)
    return rows, cast(rows.c.result, JSON)


def _sqlite_rows() -> Any:
    each = func.json_each(bindparam("batch", type_=Text)).table_valued("value").alias("e")
    rows = select(
        func.json_extract(each.c.value, "$.job_id").label("job_id"),
        func.json_extract(each.c.value, "$.token").label("token"),
        func.json_extract(each.c.value, "$.result").label("result"),
    ).cte("v")
    # SQLite stores JSON as text already; a CAST would give it numeric affinity.
    return rows, type_coerce(rows.c.result, JSON)


def complete_statement(dialect: Dialect) -> Any:
    """Return the UPDATE that marks a batch DONE where each row still holds its lease."""
    rows, result = _postgresql_rows() if dialect.name == "postgresql" else _sqlite_rows()
    return (
        update(jobs)
        .where(jobs.c.id == rows.c.job_id, jobs.c.lease_token == rows.c.token,
               jobs.c.status == RUNNING)
        .values(status=JobStatus.DONE, result=result, finished_at=db_now(),
                updated_at=db_now(), lease_token=None, lease_expires_at=None)
        .returning(jobs.c.id)
    )
