"""The ORM tables."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .timestamps import UTCDateTime, db_now

# SQLite only makes INTEGER PRIMARY KEY an alias of its rowid (autoincrementing); BIGINT elsewhere.
JobId = BigInteger().with_variant(Integer(), "sqlite")


def partial(predicate: str) -> dict[str, Any]:
    """Return the ``Index`` options that make it partial (``WHERE predicate``) on both engines."""
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


QUEUE_NAME_MAX = 64  # characters
CALLBACK_URL_MAX = 2048  # characters
TYPE_NAME_MAX = 128  # characters
UNIQUE_KEY_MAX = 255  # characters
IDEMPOTENCY_KEY_MAX = 255  # characters
IDEMPOTENCY_SCOPE_MAX = 64  # characters: "token:<id>" or "open"
FINGERPRINT_CHARS = 64  # hex digits of a SHA-256 digest
# The predicate of the partial unique index over active jobs: the INSERT's ON CONFLICT names it
# again, so both are written from this one string.
ACTIVE_UNIQUE_PREDICATE = "unique_key IS NOT NULL AND status IN ('PENDING', 'RUNNING')"
# A job is ready (claimable once run_at passes) when PENDING and waiting for no parent; the
# claim's WHERE repeats this predicate literally, so the planner reads the partial indexes.
READY_PREDICATE = "status = 'PENDING' AND waiting_count = 0"


class JobStatus(enum.StrEnum):
    """Where a job is in its lifecycle."""

    PENDING = "PENDING"  # waiting for a worker; run_at may be in the future (scheduled, backoff)
    RUNNING = "RUNNING"  # leased by one worker until lease_expires_at, fenced by lease_token
    DONE = "DONE"  # the handler returned; result holds what it returned (terminal)
    FAILED = "FAILED"  # out of attempts or failed permanently; last_error says why (terminal)
    CANCELLED = "CANCELLED"  # a client cancelled it before it finished (terminal)


class Base(DeclarativeBase):
    """Declarative base of jobsvc's tables (plain SQLAlchemy: the worker runs without Flask)."""


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(Base):
    """One unit of work, and everything known about its attempts."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(TYPE_NAME_MAX))
    queue: Mapped[str] = mapped_column(String(QUEUE_NAME_MAX), default="default")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # The priority the client asked for, once priority aging raised the stored one (else NULL).
    original_priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, validate_strings=True, name="job_status"),
        default=JobStatus.PENDING,
    )
    payload: Mapped[Any] = mapped_column(JSON)
    result: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[float | None] = mapped_column(nullable=True)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    unique_key: Mapped[str | None] = mapped_column(String(UNIQUE_KEY_MAX), nullable=True)
    # How many of its parents (depends_on) are not DONE yet; while above 0 a PENDING job stays
    # out of the ready indexes, so jobs without parents pay nothing for dependencies.
    waiting_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Set (under the parent's row lock) when a child names this job in depends_on: only such
    # jobs take the completion's dependency steps.
    has_dependents: Mapped[bool] = mapped_column(Boolean, server_default=false())
    callback_url: Mapped[str | None] = mapped_column(String(CALLBACK_URL_MAX), nullable=True)

    __table_args__ = (
        # The claim reads only this index: finished rows never enter it, so they cost the claim
        # nothing however many there are.
        Index(
            "ix_jobs_ready",
            "queue",
            text("priority DESC"),
            "run_at",
            "id",
            **partial(READY_PREDICATE),
        ),
        # The same order for workers that serve every queue (no queue filter to lead with).
        Index(
            "ix_jobs_ready_any_queue",
            text("priority DESC"),
            "run_at",
            "id",
            **partial(READY_PREDICATE),
        ),
        # The rescuer looks for expired leases among running jobs only.
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            **partial("status = 'RUNNING'"),
        ),
        Index("ix_jobs_status_id", "status", "id"),
        # At most one active job per unique_key: enqueue's ON CONFLICT DO NOTHING relies on it,
        # so two racing enqueues cannot both insert. Finished jobs leave the index.
        Index(
            "ux_jobs_active_unique_key",
            "unique_key",
            unique=True,
            **partial(ACTIVE_UNIQUE_PREDICATE),
        ),
        # The dashboard's chart counts the last hour's finished jobs by minute and status: a
        # range scan of this index, however many older rows the table keeps.
        Index("ix_jobs_finished", "finished_at", "status", **partial("finished_at IS NOT NULL")),
    )


class Queue(Base):
    """A queue's settings: paused or not, and its limits. A queue with jobs and no row here
    exists implicitly, unpaused and without limits."""

    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(QUEUE_NAME_MAX), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)  # attempts at once
    rate_limit_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_limit_per_seconds: Mapped[float | None] = mapped_column(nullable=True)
    # The rate limit's fixed window: when the current one opened, and how many attempts it
    # has started. Written only by a claim holding this row's lock.
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_starts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())


class JobDependency(Base):
    """One edge of ``depends_on``: ``child_id`` runs only once ``parent_id`` is DONE."""

    __tablename__ = "job_dependencies"

    child_id: Mapped[int] = mapped_column(
        JobId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[int] = mapped_column(
        JobId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (
        # A finished parent finds its children by this index.
        Index("ix_job_dependencies_parent", "parent_id"),
    )


class AttemptOutcome(enum.StrEnum):
    """How one attempt ended (``job_attempts.outcome``)."""

    SUCCEEDED = "succeeded"  # the handler returned; the job is DONE
    FAILED = "failed"  # the handler raised (or the worker refused the attempt's outcome)
    TIMED_OUT = "timed_out"  # it ran past its timeout_seconds
    LEASE_LOST = "lease_lost"  # its worker stopped renewing the lease (died); rescued
    CANCELLED = "cancelled"  # a client cancelled the job while it ran
    RELEASED = "released"  # the worker gave it back at shutdown; it does not count


class JobAttempt(Base):
    """One ended attempt of a job, written by the statement that recorded its outcome.

    Migration 0004's triggers (and, for successes on PostgreSQL, the completion statement)
    write these rows; no code inserts them one by one.
    """

    __tablename__ = "job_attempts"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(JobId, ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    outcome: Mapped[str] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_job_attempts_job", "job_id", "attempt"),)


class DeliveryStatus(enum.StrEnum):
    """Where a completion webhook is."""

    PENDING = "pending"  # not delivered yet; next_attempt_at says when it is tried
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # JOBSVC_WEBHOOK_MAX_ATTEMPTS tries failed, or the URL was refused


class WebhookDelivery(Base):
    """The outbox: one completion webhook of a job, added in the transaction that ended it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(JobId, ForeignKey("jobs.id", ondelete="CASCADE"))
    callback_url: Mapped[str] = mapped_column(String(CALLBACK_URL_MAX))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # While a delivery is in flight this is its lease: a worker killed mid-delivery leaves
    # it pending, due again once this passes.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_job", "job_id", "id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", **partial("status = 'pending'")),
    )


TOKEN_NAME_MAX = 64  # characters
TOKEN_HASH_CHARS = 64  # hex digits of a SHA-256 digest


class ApiToken(Base):
    """An API token: only its SHA-256 hash is kept, never the token itself."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(TOKEN_NAME_MAX))
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_CHARS), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))  # comma-separated, sorted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        # A name names one live token; revoked rows stay for the record and free the name.
        Index(
            "ux_api_tokens_live_name",
            "name",
            unique=True,
            **partial("revoked_at IS NULL"),
        ),
    )


class IdempotencyKey(Base):
    """An enqueue's idempotency key: which job it created, for what request, and when.

    No foreign key to jobs: the key outlives a pruned job (a replay still must not create a
    second one) for JOBSVC_IDEMPOTENCY_SECONDS.
    """

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(IDEMPOTENCY_SCOPE_MAX))
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX))
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_CHARS))  # SHA-256 of the request
    job_id: Mapped[int] = mapped_column(JobId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())

    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
        # Expired keys are deleted oldest first, in bounded batches.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )


SCHEDULE_NAME_MAX = TYPE_NAME_MAX  # a schedule is named for the job type it enqueues
CRON_MAX = 200  # characters
TIMEZONE_MAX = 64  # characters


class Schedule(Base):
    """A periodic job as the workers that run its handler registered it."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(SCHEDULE_NAME_MAX), primary_key=True)
    cron: Mapped[str | None] = mapped_column(String(CRON_MAX), nullable=True)
    every_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_MAX))
    queue: Mapped[str] = mapped_column(String(QUEUE_NAME_MAX))
    payload: Mapped[Any] = mapped_column(JSON)
    # The newest tick enqueued: what a worker that comes back after an outage catches up from.
    last_tick_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())


class ScheduleTick(Base):
    """One tick of a schedule that has its job: the key that makes it one job however many
    workers enqueue it."""

    __tablename__ = "schedule_ticks"

    schedule: Mapped[str] = mapped_column(String(SCHEDULE_NAME_MAX), primary_key=True)
    tick_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(JobId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=db_now())
