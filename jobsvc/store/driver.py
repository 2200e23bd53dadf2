"""A statement compiled once to the driver's SQL and run on the DBAPI cursor of a connection.

For the API's hottest statement (the enqueue), SQLAlchemy's per-execution work (compiled cache
lookup, execution context, result object, events) cost about 70 us, a third of a single
``POST /jobs`` on SQLite. The connection, its transaction and its pool stay SQLAlchemy's; only
the one statement goes to the driver. Errors come back as SQLAlchemy's own exception classes,
with a lost connection invalidated, so ``translate_errors`` treats them as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class DriverStatement:
    """SQL text in the driver's parameter style, and the order of its positional names."""

    sql: str
    positional_names: tuple[str, ...] | None  # None: the driver takes named parameters

    @classmethod
    def compile(cls, statement: Any, dialect: Dialect) -> DriverStatement:
        """Compile ``statement``, whose bound parameters must all be given at execution."""
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positional else None
        return cls(str(compiled), names)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.positional_names is None:
            return values
        return tuple(values[name] for name in self.positional_names)


def fetch_all(connection: Connection, statement: DriverStatement,
              values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run ``statement`` with ``values`` inside ``connection``'s transaction; return its rows."""
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement.sql, statement.parameters(values))
        return cursor.fetchall()
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            # As SQLAlchemy does on a disconnect: this connection, and every other one pooled
            # before it (a server restart killed them all), must not be handed out again.
            connection.invalidate(exc)
            connection.engine.dispose()
        raise DBAPIError.instance(statement.sql, None, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, connection_invalidated=lost,
                                  dialect=dialect) from exc
    finally:
        cursor.close()
