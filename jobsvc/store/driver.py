"""A statement compiled once to the driver's SQL and run on a pooled DBAPI connection.

For the API's hottest statement (the enqueue), SQLAlchemy's per-execution work (compiled cache
lookup, execution context, result object, events, the ``Connection`` and its transaction) cost
about 120 us, half of a single ``POST /jobs`` on SQLite. The pool (and its checkout ping) stays
SQLAlchemy's; the one statement, which is its own transaction, goes to the driver in autocommit.
Errors come back as SQLAlchemy's own exception classes, and a lost connection discards the pool
as SQLAlchemy would, so ``translate_errors`` treats them as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError

from .engine import writer_lock

_PLAIN_TYPES = (int, float, str, type(None))


@dataclass(frozen=True)
class DriverStatement:
    """SQL text in the driver's parameter style, and the order of its positional names."""

    sql: str
    positional_names: tuple[str, ...] | None  # None: the driver takes named parameters
    fixed: Mapping[str, Any] = field(default_factory=dict)  # values the statement itself bound

    @classmethod
    def from_statement(cls, statement: Any, dialect: Dialect) -> DriverStatement:
        """Compile ``statement``; its bound parameters without a value must all be given at
        execution (the dialect's own, such as SQLite's ``OFFSET 0``, are kept)."""
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positional else None
        fixed = {name: bind.value for bind, name in compiled.bind_names.items()
                 if not bind.required}
        for name, value in fixed.items():
            # The driver gets these as they are, without SQLAlchemy's type processing: plain
            # values only (an Enum or a datetime would need it; write those as literals).
            if type(value) not in _PLAIN_TYPES:
                raise TypeError(f"bound value {name}={value!r} needs type processing")
        return cls(str(compiled), names, fixed)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.positional_names is None:
            return {**self.fixed, **values} if self.fixed else values
        fixed = self.fixed
        return tuple(values[name] if name in values else fixed[name]
                     for name in self.positional_names)


def fetch_all_autocommit(engine: Engine, statement: DriverStatement,
                         values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run ``statement`` as its own transaction on a pooled connection; return its rows."""
    dialect = engine.dialect
    postgresql = dialect.name == "postgresql"
    with writer_lock(engine):
        try:
            pooled = engine.raw_connection()
        except dialect.loaded_dbapi.Error as exc:  # no server: Engine.connect would wrap it too
            raise _wrapped(exc, statement, dialect, lost=False) from exc
        try:
            # SQLite connections are in autocommit already (isolation_level None, see engine.py).
            if postgresql:
                pooled.driver_connection.autocommit = True
            cursor = pooled.cursor()
            try:
                cursor.execute(statement.sql, statement.parameters(values))
                return cursor.fetchall()
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, pooled.dbapi_connection, None)
            if lost:
                # As SQLAlchemy does on a disconnect: this connection, and every other one
                # pooled before it (a server restart killed them all), must not be reused.
                pooled.invalidate(exc)
                engine.dispose()
            raise _wrapped(exc, statement, dialect, lost=lost) from exc
        finally:
            _give_back(pooled, dialect, reset_autocommit=postgresql)


def _wrapped(exc: Exception, statement: DriverStatement, dialect: Dialect, *,
             lost: bool) -> DBAPIError:
    # SQLAlchemy's own class for the driver's error (OperationalError, IntegrityError...).
    return DBAPIError.instance(statement.sql, None, exc, dialect.loaded_dbapi.Error,
                               hide_parameters=True, connection_invalidated=lost,
                               dialect=dialect)


def _give_back(pooled: Any, dialect: Dialect, *, reset_autocommit: bool) -> None:
    if reset_autocommit and pooled.is_valid:
        try:
            pooled.driver_connection.autocommit = False  # as the pool's other users expect
        except dialect.loaded_dbapi.Error as exc:
            pooled.invalidate(exc)  # a connection that cannot say even that is not reused
    pooled.close()
