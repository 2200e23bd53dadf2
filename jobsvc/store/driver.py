"""A statement compiled once to the driver's SQL, and its run on a pooled DBAPI connection.

For the API's hottest statement (the enqueue), SQLAlchemy's per-execution work (compiled cache
lookup, execution context, result object, events, the ``Connection`` and its transaction) cost
about 120 us, half of a single ``POST /jobs`` on SQLite. The pool (and its checkout ping) stays
SQLAlchemy's; the one statement, which is its own transaction, goes to the driver in autocommit
(``Executor.run_one``; inside a transaction the executor runs the same text on its connection).
Errors come back as SQLAlchemy's own exception classes, and a lost connection discards the pool
as SQLAlchemy would, so ``translate_errors`` treats them as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Dialect as SQLAlchemyDialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .dialects import Dialect

_PLAIN_TYPES = (int, float, str, type(None))


@dataclass(frozen=True)
class DriverStatement:
    """SQL text in the driver's parameter style, and the order of its positional names."""

    sql: str
    positional_names: tuple[str, ...] | None  # None: the driver takes named parameters
    fixed: Mapping[str, Any] = field(default_factory=dict)  # values the statement itself bound

    @classmethod
    def from_statement(cls, statement: Any, dialect: SQLAlchemyDialect) -> DriverStatement:
        """Compile ``statement``; its bound parameters without a value must all be given at
        execution (the dialect's own, such as SQLite's ``OFFSET 0``, are kept)."""
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positional else None
        fixed = {
            name: bind.value for bind, name in compiled.bind_names.items() if not bind.required
        }
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
        return tuple(
            values[name] if name in values else fixed[name] for name in self.positional_names
        )


def fetch_all_autocommit(
    engine: Engine, dialect: Dialect, statement: DriverStatement, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run ``statement`` as its own transaction on a pooled connection; return its rows.

    Only ``Executor.run_one`` calls this, holding the dialect's writer lock.
    """
    driver = engine.dialect
    try:
        pooled = engine.raw_connection()
    except driver.loaded_dbapi.Error as exc:  # no server: Engine.connect would wrap it too
        raise _wrapped(exc, statement, driver, lost=False) from exc
    try:
        dialect.driver_autocommit(pooled.driver_connection, True)
        cursor = pooled.cursor()
        try:
            cursor.execute(statement.sql, statement.parameters(values))
            return cursor.fetchall()
        finally:
            cursor.close()
    except driver.loaded_dbapi.Error as exc:
        lost = driver.is_disconnect(exc, pooled.dbapi_connection, None)
        if lost:
            # As SQLAlchemy does on a disconnect: this connection, and every other one
            # pooled before it (a server restart killed them all), must not be reused.
            pooled.invalidate(exc)
            engine.dispose()
        raise _wrapped(exc, statement, driver, lost=lost) from exc
    finally:
        _give_back(pooled, dialect, driver)


def _wrapped(
    exc: Exception, statement: DriverStatement, driver: SQLAlchemyDialect, *, lost: bool
) -> DBAPIError:
    # SQLAlchemy's own class for the driver's error (OperationalError, IntegrityError...).
    return DBAPIError.instance(
        statement.sql,
        None,
        exc,
        driver.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=driver,
    )


def _give_back(pooled: Any, dialect: Dialect, driver: SQLAlchemyDialect) -> None:
    if pooled.is_valid:
        try:
            dialect.driver_autocommit(pooled.driver_connection, False)  # as the pool expects
        except driver.loaded_dbapi.Error as exc:
            pooled.invalidate(exc)  # a connection that cannot say even that is not reused
    pooled.close()
