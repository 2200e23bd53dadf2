"""Tune the jobs table for a queue's life: storage on PostgreSQL, and a ready index for all queues.

Every job is updated several times (claim, heartbeats, outcome). Free space in each page
(fillfactor) lets PostgreSQL keep those updates on the same page (HOT updates, no index churn),
and a more eager autovacuum keeps dead row versions from piling up under a busy queue.
SQLite has no such settings.

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

STORAGE = {
    "fillfactor": "70",
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_analyze_scale_factor": "0.02",
    "autovacuum_vacuum_cost_delay": "1",
}


def upgrade() -> None:
    pending = sa.text("status = 'PENDING'")
    op.create_index("ix_jobs_ready_any_queue", "jobs", [sa.text("priority DESC"), "run_at", "id"],
                    postgresql_where=pending, sqlite_where=pending)
    if op.get_bind().dialect.name != "postgresql":
        return
    settings = ", ".join(f"{name} = {value}" for name, value in STORAGE.items())
    op.execute(f"ALTER TABLE jobs SET ({settings})")


def downgrade() -> None:
    op.drop_index("ix_jobs_ready_any_queue", table_name="jobs")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE jobs RESET ({', '.join(STORAGE)})")
