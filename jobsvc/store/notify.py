"""Waking idle workers: LISTEN/NOTIFY on PostgreSQL, ``PRAGMA data_version`` on SQLite."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from .dialects import dialect_for
from .dialects.base import CHANNEL, Waker

__all__ = ["CHANNEL", "Waker", "open_waker"]


def open_waker(engine: Engine) -> Waker:
    """Return the waker that suits ``engine``'s dialect."""
    return dialect_for(engine).open_waker()
