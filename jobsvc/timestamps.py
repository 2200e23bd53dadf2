"""UTC timestamps on both engines, and the database's clock as SQL.

How each engine stores a timestamp and reads its clock is its dialect's (``jobsvc.store.dialects``):
PostgreSQL stores ``timestamptz``; SQLite, which has no timestamp type, stores seconds since the
epoch as REAL, which keeps ``run_at <= now`` a numeric comparison an index can serve and lets the
same arithmetic (``now + seconds``) run in SQL on both engines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


def _kind(dialect: Dialect) -> Any:
    # Imported here: the store imports the models, which import this module.
    from .store.dialects import kind_of

    return kind_of(dialect)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, stored as the dialect's ``timestamp_type`` stores it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # The dialect's type converts both ways; SQLAlchemy asks once per dialect.
        return dialect.type_descriptor(_kind(dialect).timestamp_type())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        return value


class db_now(FunctionElement[datetime]):
    """The database's current time (PostgreSQL ``now()``; SQLite's clock as epoch seconds)."""

    type = UTCDateTime()
    inherit_cache = True


class db_now_plus(FunctionElement[datetime]):
    """The database's current time plus a number of seconds (an expression or a bound value)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_now)
def _now(element: db_now, compiler: Any, **kw: Any) -> str:
    return str(_kind(compiler.dialect).now_sql())


@compiles(db_now_plus)
def _now_plus(element: db_now_plus, compiler: Any, **kw: Any) -> str:
    (seconds,) = element.clauses
    return str(_kind(compiler.dialect).now_plus_sql(compiler.process(seconds, **kw)))


class periods_since(FunctionElement[int]):
    """The whole periods of a number of seconds from a past time to the database's now."""

    type = Integer()
    inherit_cache = True


@compiles(periods_since)
def _periods_since(element: periods_since, compiler: Any, **kw: Any) -> str:
    timestamp, period = element.clauses
    return str(
        _kind(compiler.dialect).periods_since_sql(
            compiler.process(timestamp, **kw), compiler.process(period, **kw)
        )
    )
