"""Liveness of the service and its database."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..errors import DatabaseUnavailable, problem

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response | tuple[Response, int]:
    """Answer 200 when the database answers, else 503 with the reason."""
    try:
        current_app.extensions["jobsvc.store"].ping()
    except DatabaseUnavailable as exc:
        response = problem(503, "Service Unavailable", f"database: {exc.message}")
        response.headers["Retry-After"] = "2"
        return response
    return jsonify({"status": "ok"})
