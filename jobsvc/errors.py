"""Domain errors: one base class whose docstring is the default message; no HTTP here.

Each error carries the facts a caller may act on (``retry_after_seconds``, per-field
``errors``, ``job_status``); ``jobsvc.api.problems`` alone turns them into HTTP responses.
"""

from __future__ import annotations

from typing import Any


class JobsvcError(Exception):
    """Something went wrong in jobsvc."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)

    @property
    def message(self) -> str:
        """Return the human-readable explanation."""
        return str(self.args[0])


class JobNotFound(JobsvcError):
    """No job has this id."""


class QueueNotFound(JobsvcError):
    """No queue has this name: it has no jobs and no settings."""


class InvalidTransition(JobsvcError):
    """The job is not in a state that allows this."""

    def __init__(self, message: str | None = None, *, job_status: str | None = None) -> None:
        super().__init__(message)
        self.job_status = job_status


class IdempotencyKeyReused(JobsvcError):
    """This Idempotency-Key was used before with a different request."""

    def __init__(self, key: str, job_id: int) -> None:
        super().__init__(
            f"the Idempotency-Key {key!r} was used before with a different request (it "
            f"created job {job_id}); send a new key for a new request, or the same request "
            "to have its job again"
        )
        self.idempotency_key = key
        self.job_id = job_id


class ValidationFailed(JobsvcError):
    """The request has fields that are missing, of the wrong type, out of range or unknown."""

    def __init__(self, errors: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message)
        self.errors = errors


class ParentsRefused(ValidationFailed):
    """A job's depends_on names jobs that do not exist, or that ended FAILED or CANCELLED."""

    def __init__(self, by_item: dict[int, list[str]]) -> None:
        super().__init__({str(index): {"depends_on": why} for index, why in by_item.items()})
        self.by_item = by_item  # the index of each refused job in the enqueue, and why


class MalformedBody(JobsvcError):
    """The request body is not valid JSON."""


class UnsupportedMediaType(JobsvcError):
    """The request body must be JSON (Content-Type: application/json)."""


class Unauthorized(JobsvcError):
    """This endpoint needs an API token: send `Authorization: Bearer <token>`."""

    def __init__(self, message: str | None = None, *, credentials_rejected: bool = False) -> None:
        super().__init__(message)
        # True when credentials were sent and refused, False when none were sent.
        self.credentials_rejected = credentials_rejected


class Forbidden(JobsvcError):
    """This API token does not have the scope this endpoint needs."""


class RateLimited(JobsvcError):
    """This API token sent too many requests; slow down."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__()
        self.retry_after_seconds = retry_after_seconds


class QueueFull(JobsvcError):
    """The queue holds as many waiting jobs as it may; try again once workers catch up."""

    def __init__(self, message: str | None = None, *, queue: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.queue = queue
        self.retry_after_seconds = retry_after_seconds


class DatabaseUnavailable(JobsvcError):
    """The database is not answering; try again shortly."""


class SchemaBehind(JobsvcError):
    """The database schema is older than this code; apply its migrations first."""


class TokenNameTaken(JobsvcError):
    """A live token already has this name; revoke it first or pick another name."""
