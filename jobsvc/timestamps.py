"""UTC timestamps on both engines, and the database's clock as SQL.

PostgreSQL stores ``timestamptz``. SQLite has no timestamp type, so it stores seconds since the
epoch as REAL: that keeps ``run_at <= now`` a numeric comparison an index can serve, and lets the
same arithmetic (``now + seconds``) run in SQL on both engines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime: ``timestamptz`` on PostgreSQL, epoch seconds on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Float())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        return value.timestamp() if dialect.name == "sqlite" else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return datetime.fromtimestamp(float(value), UTC)
        return value.astimezone(UTC)


class db_now(FunctionElement[datetime]):  # noqa: N801 - reads like the SQL function it is
    """The database's current time (PostgreSQL ``now()``; SQLite's clock as epoch seconds)."""

    type = UTCDateTime()
    inherit_cache = True


class db_now_plus(FunctionElement[datetime]):  # noqa: N801
    """The database's current time plus a number of seconds (an expression or a bound value)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_now, "postgresql")
def _pg_now(element: db_now, compiler: Any, **kw: Any) -> str:
    return "now()"


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: Any, **kw: Any) -> str:
    # unixepoch('subsec') needs SQLite 3.42; julianday works everywhere and keeps milliseconds.
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(db_now_plus, "postgresql")
def _pg_now_plus(element: db_now_plus, compiler: Any, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"(now() + make_interval(secs => {compiler.process(seconds, **kw)}))"


@compiles(db_now_plus, "sqlite")
def _sqlite_now_plus(element: db_now_plus, compiler: Any, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"({_sqlite_now(db_now(), compiler)} + {compiler.process(seconds, **kw)})"

