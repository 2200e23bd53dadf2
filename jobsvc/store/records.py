"""Value objects that cross the store's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..models import JobStatus
from .outcomes import Failed, Outcome, Released, Rescued, Succeeded

# The outcome kinds live in .outcomes; importing them from here still works.
__all__ = ["ClaimedJob", "Failed", "JobRecord", "Lease", "NewJob", "Outcome", "Released",
           "Rescued", "Succeeded", "TokenRecord"]


@dataclass(frozen=True)
class NewJob:
    """A job as a client asks for it, validated."""

    type: str
    payload: Any
    queue: str
    priority: int
    max_attempts: int
    run_at: datetime | None = None
    timeout_seconds: float | None = None
    payload_json: str | None = field(default=None, compare=False)  # if the caller encoded it


@dataclass(frozen=True)
class JobRecord:
    """A stored job, as clients see it."""

    id: int
    type: str
    queue: str
    priority: int
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
