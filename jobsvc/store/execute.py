"""The one way the store runs SQL: a writing or reading transaction, or one statement alone.

A statement may be a SQLAlchemy statement or a ``DriverStatement`` (compiled once to the
driver's SQL). Alone (``run_one``), a driver statement takes the fast path: a pooled DBAPI
connection in autocommit, without SQLAlchemy's per-execution work (see ``driver.py``). Inside a
transaction the same text runs on the transaction's connection. Either way the caller writes the
same call and gets the same rows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..errors import DatabaseUnavailable
from .dialects import dialect_for
from .driver import DriverStatement, fetch_all_autocommit

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Values = Mapping[str, Any] | None


@dataclass(frozen=True)
class Transaction:
    """A connection inside one transaction; every statement of it runs here."""

    connection: Connection

    def execute(self, statement: Any, values: Values = None) -> CursorResult[Any]:
        """Run ``statement`` in this transaction and return its result."""
        if isinstance(statement, DriverStatement):
            return self.connection.exec_driver_sql(
                statement.sql, statement.parameters(values or {})
            )
        return self.connection.execute(statement, values)

    def run(self, statement: Any, values: Values = None) -> list[Any]:
        """Run ``statement`` in this transaction and return its rows."""
        return self.execute(statement, values).all()


class Executor:
    """Runs the store's statements on one engine, through its dialect."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect_for(engine)
        self._writer_lock = self.dialect.writer_lock()

    def prepare(self, statement: Any) -> DriverStatement:
        """Compile ``statement`` once to the driver's SQL, for a hot path."""
        return DriverStatement.from_statement(statement, self.engine.dialect)

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """Yield a transaction that will write (SQLite: BEGIN IMMEDIATE, the writer lock held)."""
        with self._writer_lock, self.engine.connect() as connection:
            self.dialect.mark_writer(connection, single_statement=False)
            with connection.begin():
                yield Transaction(connection)

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """Yield a transaction that only reads."""
        with self.engine.connect() as connection, connection.begin():
            yield Transaction(connection)

    def run_one(self, statement: Any, values: Values = None) -> list[Any]:
        """Run one writing statement as its own transaction (autocommit); return its rows.

        A single statement is atomic by itself, so no BEGIN and COMMIT go around it (on
        PostgreSQL two round trips; its row locks and its trigger's NOTIFY commit with it).
        """
        with self._writer_lock:
            if isinstance(statement, DriverStatement):
                return fetch_all_autocommit(self.engine, self.dialect, statement, values or {})
            with self.engine.connect() as connection:
                self.dialect.mark_writer(connection, single_statement=True)
                rows = connection.execute(statement, values).all()
                connection.commit()  # a no-op for the driver: nothing began
                return rows


QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout, or a cancel request
DEADLOCK_DETECTED = "40P01"  # PostgreSQL chose this transaction to roll back


def is_deadlock(exc: BaseException) -> bool:
    """Return True if the database rolled the transaction back to break a deadlock."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == DEADLOCK_DETECTED


def translate_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Raise ``DatabaseUnavailable`` when the database cannot be reached, stays locked, has
    no free connection in the pool, or cancelled a statement that ran too long."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except PoolTimeout as exc:
            logger.warning("database unavailable: no free connection in the pool (%s)", exc)
            raise DatabaseUnavailable() from exc
        except OperationalError as exc:
            logger.warning("database unavailable: %s", exc.orig)
            raise DatabaseUnavailable() from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                logger.warning("database connection lost: %s", exc.orig)
                raise DatabaseUnavailable() from exc
            if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
                logger.warning("database statement cancelled: %s", exc.orig)
                raise DatabaseUnavailable() from exc
            raise

    return wrapper
