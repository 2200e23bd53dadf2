"""Unique jobs and idempotency keys.

``jobs.unique_key`` with a partial unique index over active (PENDING or RUNNING) jobs: an
enqueue's ``INSERT ... ON CONFLICT DO NOTHING`` then returns nothing for a key already active,
race-proof on both engines. ``idempotency_keys`` remembers which job each ``Idempotency-Key``
created, for which request, per token; it has no foreign key so it outlives a pruned job.

Revision ID: 0004_enqueue
Revises: 0004_queues
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobsvc.models import JobId
from jobsvc.timestamps import UTCDateTime, db_now

revision = "0004_enqueue"
down_revision = "0004_queues"
branch_labels = None
depends_on = None

# models.ACTIVE_UNIQUE_PREDICATE, frozen here as this revision ships it.
ACTIVE_UNIQUE = "unique_key IS NOT NULL AND status IN ('PENDING', 'RUNNING')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("unique_key", sa.String(255), nullable=True))
    active = sa.text(ACTIVE_UNIQUE)
    op.create_index(
        "ux_jobs_active_unique_key",
        "jobs",
        ["unique_key"],
        unique=True,
        postgresql_where=active,
        sqlite_where=active,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", JobId, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("job_id", JobId, nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=db_now(), nullable=False),
        sa.UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ux_jobs_active_unique_key", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("unique_key")
