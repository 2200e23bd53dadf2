"""The dialect seam: one object per engine kind; the only code that asks which kind it is."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import Dialect as SQLAlchemyDialect

from .base import Dialect, JsonRows, Waker
from .postgresql import PostgreSQLDialect
from .sqlite import SQLiteDialect

_KINDS: dict[str, type[Dialect]] = {kind.name: kind for kind in (SQLiteDialect, PostgreSQLDialect)}
_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Dialect] = weakref.WeakKeyDictionary()
_BY_ENGINE_GUARD = threading.Lock()


def kind_named(name: str) -> type[Dialect]:
    """Return the dialect class for a SQLAlchemy backend name."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unsupported database: {name}") from None


def kind_for_url(database_url: str) -> type[Dialect]:
    """Return the dialect class for a database URL."""
    return kind_named(make_url(database_url).get_backend_name())


def kind_of(dialect: SQLAlchemyDialect) -> type[Dialect]:
    """Return the dialect class for a SQLAlchemy dialect (for compiles and column types)."""
    return kind_named(dialect.name)


def dialect_for(engine: Engine) -> Dialect:
    """Return ``engine``'s dialect object, the same one every time (it holds the writer lock)."""
    found = _BY_ENGINE.get(engine)
    if found is None:
        with _BY_ENGINE_GUARD:
            found = _BY_ENGINE.get(engine)
            if found is None:
                found = _BY_ENGINE[engine] = kind_of(engine.dialect)(engine)
    return found


__all__ = [
    "Dialect",
    "JsonRows",
    "PostgreSQLDialect",
    "SQLiteDialect",
    "Waker",
    "dialect_for",
    "kind_for_url",
    "kind_named",
    "kind_of",
]
