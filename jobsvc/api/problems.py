"""The one mapping of errors to HTTP: RFC 9457 problem+json bodies, status codes and headers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from ..errors import (
    DatabaseUnavailable,
    Forbidden,
    IdempotencyKeyReused,
    InvalidTransition,
    JobNotFound,
    JobsvcError,
    MalformedBody,
    ParentsRefused,
    QueueFull,
    QueueNotFound,
    RateLimited,
    TokenNameTaken,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 2  # what a 503 tells clients when the error names no better wait
BEARER_CHALLENGE = 'Bearer realm="jobsvc"'
BAD_CREDENTIALS_CHALLENGE = 'Bearer realm="jobsvc", error="invalid_token"'
# Errors not named here (SchemaBehind, and any new one) answer 500 until someone decides.
STATUS_BY_ERROR: dict[type[JobsvcError], int] = {
    MalformedBody: 400,
    Unauthorized: 401,
    Forbidden: 403,
    JobNotFound: 404,
    QueueNotFound: 404,
    InvalidTransition: 409,
    IdempotencyKeyReused: 409,
    TokenNameTaken: 409,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    ParentsRefused: 422,  # a ValidationFailed of depends_on, by item
    RateLimited: 429,
    QueueFull: 503,
    DatabaseUnavailable: 503,
}


def status_of(error: JobsvcError) -> int:
    """Return the HTTP status that answers ``error``."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def problem(status: int, detail: str, **extra: Any) -> Response:
    """Return an ``application/problem+json`` response."""
    body = {
        "type": "about:blank",
        "title": title(status),
        "status": status,
        "detail": detail,
        **extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    return response


def title(status: int) -> str:
    """Return the standard reason phrase of ``status``."""
    return HTTP_STATUS_CODES.get(status, "Error")


def _members(error: JobsvcError) -> dict[str, Any]:
    # The domain facts a client can act on, as extra members of the problem body.
    if isinstance(error, ValidationFailed):
        return {"errors": error.errors}
    if isinstance(error, InvalidTransition) and error.job_status is not None:
        return {"job_status": error.job_status}
    if isinstance(error, QueueFull):
        return {"queue": error.queue}
    if isinstance(error, IdempotencyKeyReused):
        return {"idempotency_key": error.idempotency_key, "job_id": error.job_id}
    return {}


def _headers(error: JobsvcError, status: int) -> dict[str, str]:
    if isinstance(error, RateLimited | QueueFull):
        return {"Retry-After": str(error.retry_after_seconds)}
    if status == 503:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if isinstance(error, Unauthorized):
        challenge = BAD_CREDENTIALS_CHALLENGE if error.credentials_rejected else BEARER_CHALLENGE
        return {"WWW-Authenticate": challenge}
    return {}


def domain_problem(error: JobsvcError) -> Response:
    """Return the problem+json response of a domain error."""
    status = status_of(error)
    response = problem(status, error.message, **_members(error))
    response.headers.update(_headers(error, status))
    return response


def database_unavailable(detail: str) -> Response:
    """Return the 503 a probe answers when the database does not."""
    response = problem(503, detail)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def register_error_handlers(app: Flask) -> None:
    """Map every error, ours and werkzeug's, to one problem+json shape."""
    app.register_error_handler(JobsvcError, domain_problem)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        response = problem(status, error.description or title(status))
        for name, value in error.get_headers():
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return problem(500, "An unexpected error occurred; it has been logged.")
