"""jobsvc: an HTTP job queue. ``create_app`` is the only place that composes the app."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the jobsvc Flask app on the services its config describes."""
    # Imported here, not at the top: the worker imports jobsvc's modules and must not load Flask.
    from flask import Flask

    from . import cli
    from . import config as settings
    from .api import register_api
    from .extensions import db, migrate
    from .schema import migrations_directory
    from .services import build_services
    from .store import engine_options

    app = Flask(__name__, instance_path=settings.instance_path(), instance_relative_config=True)
    app.config.from_mapping(settings.load(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["JOBSVC_MAX_BODY_BYTES"]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    os.makedirs(app.instance_path, exist_ok=True)
    configure_logging(app.config["JOBSVC_LOG_LEVEL"])
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    # Flask-SQLAlchemy makes the engine, so `flask db` (Flask-Migrate) and the API share it.
    db.init_app(app)
    migrate.init_app(app, db, directory=str(migrations_directory()))
    with app.app_context():
        engine = db.engine
    register_api(app, build_services(app.config, engine=engine))
    cli.init_app(app)
    return app


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` unless the process configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
