"""Create the queues table: a queue's pause flag, concurrency and rate limit.

A queue exists implicitly through its jobs; a row here is made the first time an operator
pauses it or sets a limit. The rate limit counts starts in a fixed window kept on the row.

Revision ID: 0004_queues
Revises: 0004_sched
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobsvc.timestamps import UTCDateTime, db_now

revision = "0004_queues"
down_revision = "0004_sched"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=True),
        sa.Column("rate_limit_jobs", sa.Integer(), nullable=True),
        sa.Column("rate_limit_per_seconds", sa.Float(), nullable=True),
        sa.Column("window_started_at", UTCDateTime(), nullable=True),
        sa.Column("window_starts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=db_now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queues")
