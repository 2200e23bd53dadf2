"""Job dependencies: the job_dependencies edges, and waiting children kept out of the ready indexes.

A child names its parents at enqueue (``depends_on``); each edge is one row of
``job_dependencies``. ``jobs.waiting_count`` counts the child's parents not DONE yet, and the
ready indexes (what the claim reads) now hold only PENDING jobs with nothing to wait for, so a
claim never meets a blocked child, and jobs without parents pay nothing for them.
``jobs.has_dependents`` marks a parent, so only parents take the completion's dependency steps.

Revision ID: 0004_deps
Revises: 0004_ops
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_deps"
down_revision = "0004_ops"
branch_labels = None
depends_on = None

# jobsvc.models.READY_PREDICATE, frozen here as this revision ships it.
READY = "status = 'PENDING' AND waiting_count = 0"
PENDING = "status = 'PENDING'"
JOB_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ready_indexes(predicate: str) -> None:
    where = sa.text(predicate)
    op.create_index(
        "ix_jobs_ready",
        "jobs",
        ["queue", sa.text("priority DESC"), "run_at", "id"],
        postgresql_where=where,
        sqlite_where=where,
    )
    op.create_index(
        "ix_jobs_ready_any_queue",
        "jobs",
        [sa.text("priority DESC"), "run_at", "id"],
        postgresql_where=where,
        sqlite_where=where,
    )


def _drop_ready_indexes() -> None:
    op.drop_index("ix_jobs_ready", table_name="jobs")
    op.drop_index("ix_jobs_ready_any_queue", table_name="jobs")


def upgrade() -> None:
    # Constant defaults: PostgreSQL adds these columns without rewriting the table.
    op.add_column(
        "jobs", sa.Column("waiting_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "jobs",
        sa.Column("has_dependents", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "job_dependencies",
        sa.Column(
            "child_id", JOB_ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "parent_id", JOB_ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_job_dependencies_parent", "job_dependencies", ["parent_id"])
    _drop_ready_indexes()
    _ready_indexes(READY)


def downgrade() -> None:
    _drop_ready_indexes()
    _ready_indexes(PENDING)
    op.drop_index("ix_job_dependencies_parent", table_name="job_dependencies")
    op.drop_table("job_dependencies")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("has_dependents")
        batch.drop_column("waiting_count")
