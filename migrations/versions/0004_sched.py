"""Periodic jobs (schedules, schedule_ticks), priority aging (jobs.original_priority), and
retention's storage settings on PostgreSQL.

``schedule_ticks`` has one row per tick that has its job, keyed by (schedule, tick time): every
worker that runs a schedule's handler may insert a tick, and the key lets exactly one of them
create its job. ``schedules`` is what the workers registered, so the API lists them without
importing handler code.

Revision ID: 0004_sched
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobsvc.timestamps import UTCDateTime, db_now

revision = "0004_sched"
down_revision = "0003"
branch_labels = None
depends_on = None

JOB_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("original_priority", sa.Integer(), nullable=True))
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("every_seconds", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("last_tick_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=db_now(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), server_default=db_now(), nullable=False),
    )
    op.create_table(
        "schedule_ticks",
        sa.Column("schedule", sa.String(128), primary_key=True),
        sa.Column("tick_at", UTCDateTime(), primary_key=True),
        sa.Column("job_id", JOB_ID, nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=db_now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedule_ticks")
    op.drop_table("schedules")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("original_priority")
