"""Domain errors (one base class) and the single JSON error handler (RFC 9457 problem details)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"


class JobsvcError(Exception):
    """Something went wrong in jobsvc."""

    status = 500
    headers: dict[str, str] = {}  # read-only default; instances may replace it

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or self.__doc__)
        self.extra = extra

    @property
    def message(self) -> str:
        return str(self.args[0])


class JobNotFound(JobsvcError):
    """No job has this id."""

    status = 404


class InvalidTransition(JobsvcError):
    """The job is not in a state that allows this."""

    status = 409


class ValidationFailed(JobsvcError):
    """The request has fields that are missing, of the wrong type, out of range or unknown."""

    status = 422

    def __init__(self, errors: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message, errors=errors)


class MalformedBody(JobsvcError):
    """The request body is not valid JSON."""

    status = 400


class UnsupportedMediaType(JobsvcError):
    """The request body must be JSON (Content-Type: application/json)."""

    status = 415


class Unauthorized(JobsvcError):
    """This endpoint needs an API token: send `Authorization: Bearer <token>`."""

    status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="jobsvc"'}


class Forbidden(JobsvcError):
    """This API token does not have the scope this endpoint needs."""

    status = 403


class RateLimited(JobsvcError):
    """This API token sent too many requests; slow down."""

    status = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after_seconds)}


class QueueFull(JobsvcError):
    """The queue holds as many waiting jobs as it may; try again once workers catch up."""

    status = 503


class DatabaseUnavailable(JobsvcError):
    """The database is not answering; try again shortly."""

    status = 503


class SchemaBehind(JobsvcError):
    """The database schema is older than this code; run `flask --app jobsvc db upgrade`."""


RETRY_AFTER_SECONDS = 2


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """Return an ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    return response


def _title(status: int) -> str:
    from werkzeug.http import HTTP_STATUS_CODES

    return HTTP_STATUS_CODES.get(status, "Error")


def register_error_handlers(app: Flask) -> None:
    """Map every error, ours and werkzeug's, to one problem+json shape."""

    @app.errorhandler(JobsvcError)
    def _domain(error: JobsvcError) -> Response:
        response = problem(error.status, _title(error.status), error.message, **error.extra)
        if error.status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        response = problem(status, _title(status), error.description or _title(status))
        for name, value in error.get_headers():
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return problem(500, _title(500), "An unexpected error occurred; it has been logged.")
