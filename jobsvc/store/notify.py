"""Waking idle workers: LISTEN/NOTIFY on PostgreSQL, ``PRAGMA data_version`` on SQLite."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from .dialects import dialect_for
from .dialects.base import CHANNEL, ConnectionSettings, Waker

__all__ = ["CHANNEL", "Waker", "open_waker"]


def open_waker(
    engine: Engine, connection: ConnectionSettings | None = None, listen_url: str = ""
) -> Waker:
    """Return the waker that suits ``engine``'s dialect (``listen_url``: see Dialect)."""
    return dialect_for(engine).open_waker(connection, listen_url)
