"""Tune the jobs table for a queue's life: storage on PostgreSQL, and a ready index for all queues.

Every job is updated several times (claim, heartbeats, outcome). Free space in each page
(fillfactor) lets PostgreSQL keep those updates on the same page (HOT updates, no index churn),
and a more eager autovacuum keeps dead row versions from piling up under a busy queue.
SQLite has no such settings.

On PostgreSQL a statement-level trigger sends the NOTIFY that wakes idle workers: one per
INSERT statement and queue (not per row), inside the enqueue's own round trip, so the API no
longer sends a separate ``SELECT pg_notify`` per enqueue.

On both engines it adds the ready index for workers that serve every queue (``--queues '*'``):
ix_jobs_ready leads with the queue, so a claim without a queue filter could not read it in
priority order and would sort the whole backlog instead.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The channel is jobsvc.store.notify.CHANNEL, frozen here as this revision ships it.
NOTIFY_FUNCTION = """
CREATE FUNCTION jobsvc_notify_new_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobsvc_jobs', queue) FROM (SELECT DISTINCT queue FROM new_jobs) AS queues;
    RETURN NULL;
END
$$
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER jobs_notify_new AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobsvc_notify_new_jobs()
"""

STORAGE = {
    "fillfactor": "70",
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_analyze_scale_factor": "0.02",
    "autovacuum_vacuum_cost_delay": "1",
}


def upgrade() -> None:
    pending = sa.text("status = 'PENDING'")
    op.create_index(
        "ix_jobs_ready_any_queue",
        "jobs",
        [sa.text("priority DESC"), "run_at", "id"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    settings = ", ".join(f"{name} = {value}" for name, value in STORAGE.items())
    op.execute(f"ALTER TABLE jobs SET ({settings})")
    op.execute(NOTIFY_FUNCTION)
    op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    op.drop_index("ix_jobs_ready_any_queue", table_name="jobs")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER jobs_notify_new ON jobs")
    op.execute("DROP FUNCTION jobsvc_notify_new_jobs()")
    op.execute(f"ALTER TABLE jobs RESET ({', '.join(STORAGE)})")
