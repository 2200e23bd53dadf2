"""Attempt history, completion webhooks (callback_url and an outbox), and ended-job notices.

``job_attempts`` keeps one row per ended attempt, written by the statement that records the
outcome: on SQLite by a row trigger on ``jobs``; on PostgreSQL by the same row trigger for every
outcome but success, while a flush of successes inserts its attempts in the completion
statement itself (a data-modifying CTE: one set-based INSERT per flush, no trigger call per row).

``webhook_deliveries`` is the outbox: a row trigger on ``jobs`` adds one when a job with a
``callback_url`` ends (DONE, FAILED, CANCELLED), in the transaction that ended it.

On PostgreSQL a statement-level trigger on ``job_attempts`` sends one NOTIFY per statement on
``jobsvc_ended`` with the ids whose attempt ended (or ``*`` past NOTIFY's payload limit), and the
trigger on ``jobs`` sends one for a job that ends without an attempt (a cancel while PENDING):
an API process's one listener wakes the requests waiting on those jobs (``?wait=``).

Both child tables go with their job: ON DELETE CASCADE (SQLite: a delete trigger, which holds
whether or not a connection turned foreign keys on).

Revision ID: 0004_webhooks
Revises: 0004_deps
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobsvc.timestamps import UTCDateTime, db_now

revision = "0004_webhooks"
down_revision = "0004_deps"
branch_labels = None
depends_on = None

JobId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# How an attempt ended, read from the row before (OLD) and after (NEW) the outcome's UPDATE.
# The error type names are jobsvc.store.outcomes.TIMED_OUT and LEASE_EXPIRED, frozen here.
OUTCOME_CASE = """
    CASE
        WHEN NEW.status = 'DONE' THEN 'succeeded'
        WHEN NEW.status = 'CANCELLED' THEN 'cancelled'
        WHEN NEW.status = 'PENDING' AND NEW.attempts < OLD.attempts THEN 'released'
        WHEN NEW.error_type = 'JobTimeout' THEN 'timed_out'
        WHEN NEW.error_type = 'LeaseExpired' THEN 'lease_lost'
        ELSE 'failed'
    END
"""
ERRORED = "NEW.status IN ('PENDING', 'FAILED') AND NEW.attempts >= OLD.attempts"  # not a release
ATTEMPT_VALUES = f"""
    (NEW.id, OLD.attempts, OLD.locked_by, OLD.started_at, NEW.updated_at, {OUTCOME_CASE},
     CASE WHEN {ERRORED} THEN NEW.error_type END,
     CASE WHEN {ERRORED} THEN NEW.last_error END)
"""
ATTEMPT_COLUMNS = (
    "job_id, attempt, worker, started_at, finished_at, outcome, error_type, error_message"
)
DELIVERY_WHEN = (
    "NEW.callback_url IS NOT NULL AND NEW.status IN ('DONE', 'FAILED', 'CANCELLED')"
    " AND OLD.status <> NEW.status"
)

SQLITE_TRIGGERS = (
    f"""
CREATE TRIGGER jobs_record_attempt AFTER UPDATE OF status ON jobs
WHEN OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING'
BEGIN
    INSERT INTO job_attempts ({ATTEMPT_COLUMNS}) VALUES {ATTEMPT_VALUES};
END
""",
    f"""
CREATE TRIGGER jobs_queue_delivery AFTER UPDATE OF status ON jobs
WHEN {DELIVERY_WHEN}
BEGIN
    INSERT INTO webhook_deliveries (job_id, callback_url, status, attempts, next_attempt_at,
                                    created_at, updated_at)
    VALUES (NEW.id, NEW.callback_url, 'pending', 0, NEW.updated_at, NEW.updated_at,
            NEW.updated_at);
END
""",
    """
CREATE TRIGGER jobs_delete_children AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_attempts WHERE job_id = OLD.id;
    DELETE FROM webhook_deliveries WHERE job_id = OLD.id;
END
""",
)

PG_FUNCTIONS = (
    f"""
CREATE FUNCTION jobsvc_record_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_attempts ({ATTEMPT_COLUMNS}) VALUES {ATTEMPT_VALUES};
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION jobsvc_queue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (job_id, callback_url, status, attempts, next_attempt_at,
                                    created_at, updated_at)
    VALUES (NEW.id, NEW.callback_url, 'pending', 0, NEW.updated_at, NEW.updated_at,
            NEW.updated_at);
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION jobsvc_notify_ended_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    SELECT string_agg(DISTINCT job_id::text, ',') INTO ids FROM ended;
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('jobsvc_ended', CASE WHEN length(ids) > 7000 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION jobsvc_notify_ended_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobsvc_ended', NEW.id::text);
    RETURN NULL;
END
$$
""",
)
PG_TRIGGERS = (
    # Successes record their attempts in the completion statement (see the module docstring).
    """
CREATE TRIGGER jobs_record_attempt AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status = 'RUNNING' AND NEW.status NOT IN ('RUNNING', 'DONE'))
EXECUTE FUNCTION jobsvc_record_attempt()
""",
    f"""
CREATE TRIGGER jobs_queue_delivery AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN ({DELIVERY_WHEN})
EXECUTE FUNCTION jobsvc_queue_delivery()
""",
    """
CREATE TRIGGER job_attempts_notify_ended AFTER INSERT ON job_attempts
REFERENCING NEW TABLE AS ended
FOR EACH STATEMENT EXECUTE FUNCTION jobsvc_notify_ended_attempts()
""",
    """
CREATE TRIGGER jobs_notify_ended_unattempted AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status = 'PENDING' AND NEW.status = 'CANCELLED')
EXECUTE FUNCTION jobsvc_notify_ended_job()
""",
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("callback_url", sa.String(2048), nullable=True))
    op.create_table(
        "job_attempts",
        sa.Column("id", JobId, primary_key=True, autoincrement=True),
        sa.Column("job_id", JobId, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), server_default=db_now(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
    )
    op.create_index("ix_job_attempts_job", "job_attempts", ["job_id", "attempt"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", JobId, primary_key=True, autoincrement=True),
        sa.Column("job_id", JobId, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("callback_url", sa.String(2048), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=db_now(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=db_now(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_job", "webhook_deliveries", ["job_id", "id"])
    due = sa.text("status = 'pending'")
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=due,
        sqlite_where=due,
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*PG_FUNCTIONS, *PG_TRIGGERS):
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER jobs_notify_ended_unattempted ON jobs")
        op.execute("DROP TRIGGER job_attempts_notify_ended ON job_attempts")
        op.execute("DROP TRIGGER jobs_queue_delivery ON jobs")
        op.execute("DROP TRIGGER jobs_record_attempt ON jobs")
        for name in (
            "jobsvc_notify_ended_job",
            "jobsvc_notify_ended_attempts",
            "jobsvc_queue_delivery",
            "jobsvc_record_attempt",
        ):
            op.execute(f"DROP FUNCTION {name}()")
    else:
        for name in ("jobs_delete_children", "jobs_queue_delivery", "jobs_record_attempt"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_job", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_job_attempts_job", table_name="job_attempts")
    op.drop_table("job_attempts")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("callback_url")
