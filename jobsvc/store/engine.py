"""Creating and configuring engines: thin delegations to each engine kind's dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from .dialects import dialect_for, kind_for_url


def engine_options(database_url: str) -> dict[str, Any]:
    """Return ``create_engine`` options that suit the URL's dialect."""
    return kind_for_url(database_url).engine_options(database_url)


def configure_engine(engine: Engine) -> None:
    """Attach dialect-specific connection setup to ``engine`` (idempotent)."""
    dialect_for(engine).configure()


def worker_engine(engine: Engine) -> Engine:
    """Return an engine like ``engine`` for a worker's hot loop (PostgreSQL: its own pool).

    A statement on a dead connection raises ``DatabaseUnavailable``, SQLAlchemy then discards
    the whole pool, and the worker retries with fresh connections (claims after a pause,
    outcomes until stored).
    """
    fresh = dialect_for(engine).worker_engine()
    configure_engine(fresh)
    return fresh
