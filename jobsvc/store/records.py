"""Value objects that cross the store's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from datetime import datetime
from typing import Any

from ..jobfields import ENQUEUE_FIELDS
from ..models import JobStatus
from .outcomes import Failed, Outcome, Released, Rescued, Succeeded

# The outcome kinds live in .outcomes; importing them from here still works.
__all__ = [
    "AttemptRecord",
    "ClaimedJob",
    "Enqueued",
    "DeliveryRecord",
    "Failed",
    "JobRecord",
    "Lease",
    "NewJob",
    "Outcome",
    "Released",
    "Rescued",
    "Succeeded",
    "TokenRecord",
]


def _new_job_fields() -> list[tuple[str, Any, Any]]:
    fields: list[tuple[str, Any, Any]] = [
        (f.name, f.python_type, field(default=None) if f.store_optional else field())
        for f in ENQUEUE_FIELDS
    ]
    # The payload as compact JSON, when the caller has encoded it already.
    fields.append(("payload_json", str | None, field(default=None, compare=False)))
    return fields


# Keyword-only, its fields read from ENQUEUE_FIELDS: a new enqueue field needs no edit here.
NewJob = make_dataclass("NewJob", _new_job_fields(), frozen=True, kw_only=True)
NewJob.__module__ = __name__
NewJob.__doc__ = "A job as a client asks for it, validated."


@dataclass(frozen=True)
class JobRecord:
    """A stored job, as clients see it."""

    id: int
    type: str
    queue: str
    priority: int
    original_priority: int | None  # what the client asked for, once aging raised ``priority``
    status: JobStatus
    payload: Any
    result: Any
    last_error: str | None
    error_type: str | None
    error_traceback: str | None
    attempts: int
    max_attempts: int
    timeout_seconds: float | None
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_token: str | None
    locked_by: str | None
    lease_expires_at: datetime | None
    unique_key: str | None
    waiting_count: int  # parents not DONE yet (depends_on)
    has_dependents: bool  # some job's depends_on names this one
    waiting_on: tuple[int, ...] = ()  # the ids of those parents (read from job_dependencies)
    callback_url: str | None = None
    delivery: DeliveryRecord | None = None  # its latest completion webhook, read by get()


@dataclass(frozen=True)
class Enqueued:
    """What one enqueued job became: a new job, or the one a key already stands for.

    ``replayed``: its Idempotency-Key created this job before. ``duplicate``: an active job
    held its unique_key, so none was created. ``status`` is None if the job is gone (pruned).
    """

    id: int
    status: JobStatus | None
    created: bool
    replayed: bool = False
    duplicate: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    """One ended attempt of a job."""

    attempt: int
    worker: str | None
    started_at: datetime | None
    finished_at: datetime
    outcome: str
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    """Where a job's completion webhook is: pending, delivered or failed."""

    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Lease:
    """The right to write one attempt's outcome: valid while the row still carries the token."""

    job_id: int
    token: str


@dataclass(frozen=True)
class ClaimedJob:
    """A job leased to a worker for one attempt."""

    id: int
    type: str
    queue: str
    payload: Any
    attempt: int
    max_attempts: int
    timeout_seconds: float | None
    lease_token: str
    # Since when the job was ready (its run_at), as the database returned it (a datetime, or
    # epoch seconds on SQLite); ``ready_since`` reads it. Only the worker's metrics look at it.
    run_at: Any = field(default=None, compare=False, repr=False)

    @property
    def lease(self) -> Lease:
        return Lease(self.id, self.lease_token)


@dataclass(frozen=True)
class TokenRecord:
    """A live API token as the store knows it: its hash, never the token."""

    id: int
    name: str
    token_hash: str
    scopes: frozenset[str]
    created_at: datetime
