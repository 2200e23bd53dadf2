"""jobsvc: an HTTP job queue. ``create_app`` is the only place that composes the app."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import config as settings
from .extensions import db, migrate

logger = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None, *, serve_http: bool = True) -> Flask:
    """Create and configure the jobsvc Flask app.

    A worker passes ``serve_http=False``: it needs the config, the engine and the migrations,
    not the blueprints, schemas, OpenAPI and metrics, whose imports would only cost it memory.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(settings.load(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["JOBSVC_MAX_BODY_BYTES"]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    os.makedirs(app.instance_path, exist_ok=True)
    _configure_logging(app.config["JOBSVC_LOG_LEVEL"])

    from .schema import migrations_directory
    from .store import configure_engine, engine_options

    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    db.init_app(app)
    migrate.init_app(app, db, directory=str(migrations_directory()))
    with app.app_context():
        configure_engine(db.engine)
        _init_store(app)
    if not serve_http:
        return app

    from . import cli
    from .api import register_api
    from .errors import register_error_handlers

    register_error_handlers(app)
    register_api(app)
    cli.init_app(app)
    return app


def _init_store(app: Flask) -> None:
    from .registry import load_handler_modules
    from .schema import upgrade
    from .store import JobStore

    if app.config["JOBSVC_AUTO_MIGRATE"]:
        upgrade(app, db.engine)
    app.extensions["jobsvc.store"] = JobStore(db.engine)
    handlers = app.config["JOBSVC_HANDLERS"]
    # None means "any type": without JOBSVC_HANDLERS the API cannot know which types exist.
    app.extensions["jobsvc.job_types"] = load_handler_modules(handlers) if handlers else None


def _configure_logging(level: str) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
