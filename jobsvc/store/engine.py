"""Creating and configuring engines: thin delegations to each engine kind's dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from .dialects import dialect_for, kind_for_url
from .dialects.base import ConnectionSettings


def engine_options(
    database_url: str,
    pool_timeout: float | None = None,
    connection: ConnectionSettings | None = None,
) -> dict[str, Any]:
    """Return ``create_engine`` options that suit the URL's dialect.

    ``pool_timeout``: how long a checkout waits for a free connection (then ``TimeoutError``,
    which the store reports as ``DatabaseUnavailable``); None keeps the dialect's default.
    ``connection``: who connects and the session's limits (None: the defaults).
    """
    options = kind_for_url(database_url).engine_options(database_url, connection)
    if pool_timeout is not None:
        options["pool_timeout"] = pool_timeout
    return options


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
