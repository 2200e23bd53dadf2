"""jobsvc: an HTTP job queue. ``create_app`` is the only place that composes the app."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)


EXIT_CONFIG_ERROR = 2  # the exit code of every jobsvc process refusing its configuration


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the jobsvc Flask app on the services its config describes.

    A setting out of range stops the process (exit code 2, the reason on stderr, no
    traceback); with ``test_config`` given (tests, embedding) it raises ``ConfigError``.
    While the database is not up yet, this waits for it.
    """
    from .config import ConfigError

    try:
        return _create_app(test_config)
    except ConfigError as exc:
        if test_config is not None:
            raise
        exit_refusing(exc)


def exit_refusing(exc: Exception) -> NoReturn:
    """Stop the process: the configuration is refused."""
    print(f"jobsvc: {exc}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG_ERROR)


def _create_app(test_config: Mapping[str, Any] | None) -> Flask:
    # Imported here, not at the top: the worker imports jobsvc's modules and must not load Flask.
    from flask import Flask

    from . import cli
    from . import config as settings
    from .api import register_api
    from .extensions import db, migrate
    from .schema import migrations_directory
    from .services import (
        API_NAME,
        build_services,
        connection_settings,
        log_database,
        wait_for_database,
    )
    from .store import engine_options

    app = Flask(__name__, instance_path=settings.instance_path(), instance_relative_config=True)
    app.config.from_mapping(settings.load(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
        app.config.update(settings.check(app.config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["JOBSVC_MAX_BODY_BYTES"]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    configure_logging(app.config["JOBSVC_LOG_LEVEL"])
    log_database(app.config, "api")
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS",
        engine_options(
            app.config["SQLALCHEMY_DATABASE_URI"],
            app.config["JOBSVC_POOL_TIMEOUT_SECONDS"],
            connection_settings(app.config, API_NAME),
        ),
    )
    # Flask-SQLAlchemy makes the engine, so `flask db` (Flask-Migrate) and the API share it.
    db.init_app(app)
    migrate.init_app(app, db, directory=str(migrations_directory()))
    with app.app_context():
        engine = db.engine
    services = wait_for_database(lambda: build_services(app.config, engine=engine), "api")
    register_api(app, services)
    cli.init_app(app)
    return app


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` unless the process configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
