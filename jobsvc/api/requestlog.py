"""One log line per request: method, path, status, duration and the token's name (never the
token, nor the query string). Plain text by default; one JSON object with
``JOBSVC_LOG_FORMAT=json``. On the ``jobsvc.access`` logger, at INFO: silence it with
``JOBSVC_LOG_LEVEL=WARNING`` or a logging config of your own.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

logger = logging.getLogger("jobsvc.access")
MESSAGE = "%(method)s %(path)s %(status)s %(duration).4fs token=%(token)s"


def _started() -> None:
    g.request_started = time.perf_counter()


def _finished(response: Response) -> Response:
    if logger.isEnabledFor(logging.INFO):
        started = g.get("request_started")
        fields = {
            "event": "request",
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration": round(time.perf_counter() - started, 6) if started else 0.0,
            "token": g.get("token_name"),  # set by the access check: a name, never a secret
        }
        # The fields as the message's mapping: read by the text format and by the JSON one
        # (jobsvc.logjson reads a record's args when they carry an "event").
        logger.info(MESSAGE, fields)
    return response


def register(app: Flask) -> None:
    """Log every request of ``app``; call before any other ``before_request`` hook."""
    app.before_request(_started)
    app.after_request(_finished)
