"""One statement that completes a whole flush of succeeded attempts, fenced row by row.

The batch travels as one JSON parameter (``[{"job_id", "token", "result"}, ...]``, each result
already JSON text), so the statement's text, and its compiled and prepared forms, are the same
for every batch size. The dialect unpacks it with its own JSON table function.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, BigInteger, String, false, insert, literal_column, null, select, update

from ..models import AttemptOutcome, Job, JobAttempt
from ..timestamps import db_now
from .dialects import Dialect
from .records import Succeeded
from .sql import DONE, RUNNING

jobs = Job.__table__
attempts = JobAttempt.__table__


def batch_parameter(outcomes: Sequence[Succeeded]) -> str:
    """Return the JSON document that carries ``outcomes`` into the statement."""
    return json.dumps(
        [
            {
                "job_id": o.lease.job_id,
                "token": o.lease.token,
                "result": (
                    o.result_json
                    if o.result_json is not None
                    else json.dumps(o.result, allow_nan=False)
                ),
            }
            for o in outcomes
        ]
    )


_BATCH_COLUMNS = (("job_id", BigInteger()), ("token", String()), ("result", JSON()))


def complete_statement(dialect: Dialect, *, parents: bool) -> Any:
    """Return the statement that marks a batch DONE where each row still holds its lease.

    It returns the ids it completed, and records their attempts in the same statement.
    ``parents=False`` (the hot path, its own transaction): it leaves alone the jobs other jobs
    depend on, which must finish beside their dependency steps (``LeaseStore``); a row left
    alone is reported like a lost lease. ``parents=True`` completes them as well, inside the
    caller's transaction.
    """
    done = _done_statement(dialect, parents=parents)
    if not dialect.data_modifying_ctes:
        return done.returning(jobs.c.id)  # migration 0004's row trigger records the attempts
    return record_attempts(done, AttemptOutcome.SUCCEEDED)


def record_attempts(ended: Any, outcome: AttemptOutcome) -> Any:
    """Wrap ``ended`` (an UPDATE that ends attempts) in the INSERT of their attempt rows.

    One set-based statement (``WITH ended AS (UPDATE ... RETURNING ...) INSERT INTO
    job_attempts SELECT ... FROM ended RETURNING job_id``): the rows cost no trigger call each.
    It returns the ids of the jobs whose attempt ended, as ``ended`` would have.
    """
    rows = ended.returning(
        jobs.c.id, jobs.c.attempts, jobs.c.locked_by, jobs.c.started_at, jobs.c.updated_at
    ).cte("ended")
    return (
        insert(attempts)
        .from_select(
            ["job_id", "attempt", "worker", "started_at", "finished_at", "outcome"],
            select(
                rows.c.id,
                rows.c.attempts,
                rows.c.locked_by,
                rows.c.started_at,
                rows.c.updated_at,
                literal_column(f"'{outcome.value}'"),
            ),
        )
        .returning(attempts.c.job_id)
    )


def _done_statement(dialect: Dialect, *, parents: bool) -> Any:
    c = dialect.json_rows("batch", _BATCH_COLUMNS).columns
    fenced = (jobs.c.id == c["job_id"], jobs.c.lease_token == c["token"], jobs.c.status == RUNNING)
    if not parents:
        fenced = (*fenced, jobs.c.has_dependents == false())
    return (
        update(jobs)
        .where(*fenced)
        .values(
            status=DONE,
            result=c["result"],
            finished_at=db_now(),
            updated_at=db_now(),
            lease_token=null(),
            lease_expires_at=null(),
        )
    )
