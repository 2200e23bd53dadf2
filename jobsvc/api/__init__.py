"""The HTTP API's blueprints."""

from __future__ import annotations

from flask import Flask

from . import auth, health, jobs, limits, metrics, openapi
from .routing import JobIdConverter


def register_api(app: Flask) -> None:
    """Register every blueprint of the API on ``app``."""
    app.url_map.converters["jobid"] = JobIdConverter
    auth.init_app(app)
    limits.init_app(app)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    openapi.init_app(app)
