"""Finding the migrations, applying them under a lock, and telling whether the schema is current."""

from __future__ import annotations

import importlib.util
import logging
from contextlib import AbstractContextManager
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade as flask_migrate_upgrade
from sqlalchemy.engine import Engine

from .errors import SchemaBehind
from .store import dialect_for

logger = logging.getLogger(__name__)


def migrations_directory() -> Path:
    """Return the migrations folder: the checkout's ``migrations/`` or the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if (checkout / "env.py").is_file():
        return checkout
    spec = importlib.util.find_spec("jobsvc.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    raise FileNotFoundError("jobsvc's migrations folder is missing from this installation")


def _heads() -> set[str]:
    config_dir = migrations_directory()
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(config_dir))
    return set(ScriptDirectory.from_config(config).get_heads())


def pending_migrations(engine: Engine) -> bool:
    """Return True when the database's schema is behind this code's migrations."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current != _heads()


def _migration_lock(engine: Engine) -> AbstractContextManager[None]:
    # Several processes may start at once (make run starts the API and a worker together):
    # one migrates, the others wait and then find nothing left to do.
    return dialect_for(engine).migration_lock()


def upgrade(app: Flask, engine: Engine) -> None:
    """Apply pending migrations, safely when several processes start together."""
    if not pending_migrations(engine):
        return
    with _migration_lock(engine):
        if pending_migrations(engine):
            logger.info("applying database migrations")
            with app.app_context():
                flask_migrate_upgrade(directory=str(migrations_directory()))


def require_current(engine: Engine) -> None:
    """Raise ``SchemaBehind`` unless the schema matches this code."""
    if pending_migrations(engine):
        raise SchemaBehind()
