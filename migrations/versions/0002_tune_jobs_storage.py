"""Tune the jobs table's storage on PostgreSQL for a queue's update-heavy life.

Every job is updated several times (claim, heartbeats, outcome). Free space in each page
(fillfactor) lets PostgreSQL keep those updates on the same page (HOT updates, no index churn),
and a more eager autovacuum keeps dead row versions from piling up under a busy queue.
SQLite has no such settings; this revision does nothing there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

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
    if op.get_bind().dialect.name != "postgresql":
        return
    settings = ", ".join(f"{name} = {value}" for name, value in STORAGE.items())
    op.execute(f"ALTER TABLE jobs SET ({settings})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE jobs RESET ({', '.join(STORAGE)})")
