"""Liveness of the service and its database."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import DatabaseUnavailable
from .endpoints import OPEN_TO_ALL, endpoint, json_response, problem_response
from .problems import database_unavailable
from .schemas import HealthSchema
from .state import state

bp = Blueprint("health", __name__)


@endpoint(
    bp,
    "GET",
    "/health",
    scope=OPEN_TO_ALL,
    summary="Answer 200 when the database answers and can be written.",
    operation_id="health",
    security=[],
    common_errors=False,
    responses={
        "200": json_response(HealthSchema, "The service and its database answer."),
        "503": problem_response("503"),
    },
)
def health() -> Response:
    """Answer 200 when the database answers and takes writes, else 503 with the reason."""
    try:
        reason = state().services.jobs.unwritable_reason()
    except DatabaseUnavailable as exc:
        return database_unavailable(f"database: {exc.message}")
    if reason is not None:
        return database_unavailable(f"database cannot be written: {reason}")
    return jsonify({"status": "ok"})
