"""Finding the migrations, applying them under a lock, and telling whether the schema is current."""

from __future__ import annotations

import importlib.util
import logging
from contextlib import AbstractContextManager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from .errors import SchemaBehind
from .store import dialect_for

logger = logging.getLogger(__name__)

# What an operator runs when the schema is behind (auto-migration off).
SCHEMA_BEHIND_HINT = (
    "The database schema is older than this code; run `flask --app jobsvc db upgrade`."
)


def migrations_directory() -> Path:
    """Return the migrations folder: the checkout's ``migrations/`` or the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if (checkout / "env.py").is_file():
        return checkout
    spec = importlib.util.find_spec("jobsvc.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    raise FileNotFoundError("jobsvc's migrations folder is missing from this installation")


def _alembic_config() -> Config:
    directory = migrations_directory()
    config = Config(str(directory / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    return config


def _heads() -> set[str]:
    return set(ScriptDirectory.from_config(_alembic_config()).get_heads())


def pending_migrations(engine: Engine) -> bool:
    """Return True when the database's schema is behind this code's migrations."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current != _heads()


def _migration_lock(engine: Engine) -> AbstractContextManager[None]:
    # Several processes may start at once (make run starts the API and a worker together):
    # one migrates, the others wait and then find nothing left to do.
    return dialect_for(engine).migration_lock()


def upgrade(engine: Engine) -> None:
    """Apply pending migrations, safely when several processes start together."""
    if not pending_migrations(engine):
        return
    with _migration_lock(engine):
        if pending_migrations(engine):
            logger.info("applying database migrations")
            _alembic_upgrade(engine)


def _alembic_upgrade(engine: Engine) -> None:
    # Alembic run directly on our engine, without a Flask app: the worker has none.
    # migrations/env.py takes the connection from the config's attributes.
    config = _alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def require_current(engine: Engine) -> None:
    """Raise ``SchemaBehind`` unless the schema matches this code."""
    if pending_migrations(engine):
        raise SchemaBehind(SCHEMA_BEHIND_HINT)
