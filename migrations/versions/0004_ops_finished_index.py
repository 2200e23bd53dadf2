"""Index finished jobs by when they finished: the dashboard's per-minute chart reads it.

Revision ID: 0004_ops
Revises: 0004_enqueue
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_ops"
down_revision = "0004_enqueue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    finished = sa.text("finished_at IS NOT NULL")
    op.create_index(
        "ix_jobs_finished",
        "jobs",
        ["finished_at", "status"],
        postgresql_where=finished,
        sqlite_where=finished,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_finished", table_name="jobs")
