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
    literal_column,
    null,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Dialect

from ..models import Job
from ..timestamps import db_now
from .records import Succeeded
from .sql import DONE, RUNNING

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
    rows = select(*(  # paths as literals: the statement's one bound parameter is the batch
        func.json_extract(each.c.value, literal_column(f"'$.{name}'")).label(name)
        for name in ("job_id", "token", "result")
    )).cte("v")
    # SQLite stores JSON as text already; a CAST would give it numeric affinity.
    return rows, type_coerce(rows.c.result, JSON)


def complete_statement(dialect: Dialect) -> Any:
    """Return the UPDATE that marks a batch DONE where each row still holds its lease."""
    rows, result = _postgresql_rows() if dialect.name == "postgresql" else _sqlite_rows()
    return (
        update(jobs)
        .where(jobs.c.id == rows.c.job_id, jobs.c.lease_token == rows.c.token,
               jobs.c.status == RUNNING)
        .values(status=DONE, result=result, finished_at=db_now(),
                updated_at=db_now(), lease_token=null(), lease_expires_at=null())
        .returning(jobs.c.id)
    )
