"""SQL fragments the store's statements share."""

from __future__ import annotations

from sqlalchemy import literal_column

from ..models import JobStatus

# Statuses are written into the SQL as literals, not bound: a partial index (WHERE status =
# 'PENDING') only serves a query whose predicate the planner can match at plan time, and a bound
# value hides it (SQLite never matches it; PostgreSQL's generic plans of prepared statements
# don't either).
PENDING = literal_column(f"'{JobStatus.PENDING.value}'")
RUNNING = literal_column(f"'{JobStatus.RUNNING.value}'")
DONE = literal_column(f"'{JobStatus.DONE.value}'")
ZERO = literal_column("0")  # waiting_count = 0: also part of the ready indexes' predicate
