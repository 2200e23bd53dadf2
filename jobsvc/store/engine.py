"""Engine setup per dialect, and the two kinds of transaction the store runs."""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from ..errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
PING_AFTER_IDLE_SECONDS = 2.0  # a pooled PostgreSQL connection idle this long is pinged
_IDLE_SINCE = "jobsvc_idle_since"
WRITE_OPTION = "jobsvc_write"  # True: BEGIN IMMEDIATE; SINGLE_STATEMENT: no BEGIN at all
SINGLE_STATEMENT = "single statement"

_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()

P = ParamSpec("P")
R = TypeVar("R")


def engine_options(database_url: str) -> dict[str, Any]:
    """Return ``create_engine`` options that suit the URL's dialect."""
    # hide_parameters: a statement's error message would otherwise carry its bound values
    # (payloads, results, token hashes) into every log line that prints the exception.
    if database_url.startswith("sqlite"):
        # The default pool for a file database keeps connections per thread-safe queue;
        # check_same_thread is off because worker threads share the pool.
        return {"connect_args": {"check_same_thread": False}, "hide_parameters": True}
    # No pool_pre_ping: a round trip before every transaction was a fifth of a POST /jobs.
    # configure_engine pings only connections that sat idle in the pool (see _ping_if_idle).
    return {"pool_size": 10, "max_overflow": 10, "hide_parameters": True}


def worker_engine(engine: Engine) -> Engine:
    """Return an engine like ``engine`` with its own pool, for a worker's hot loop.

    A statement on a dead connection raises ``DatabaseUnavailable``, SQLAlchemy then discards
    the whole pool, and the worker retries with fresh connections (claims after a pause,
    outcomes until stored).
    """
    if engine.dialect.name == "sqlite":
        return engine
    options = engine_options(engine.url.render_as_string(hide_password=False))
    fresh = create_engine(engine.url, **options)
    configure_engine(fresh)
    return fresh


def configure_engine(engine: Engine) -> None:
    """Attach dialect-specific connection setup to ``engine`` (idempotent)."""
    if engine.dialect.name == "sqlite":
        if not event.contains(engine, "connect", _sqlite_on_connect):
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return
    if not event.contains(engine.pool, "checkout", _ping_if_idle):
        event.listen(engine.pool, "checkin", _note_checkin)
        event.listen(engine.pool, "checkout", _ping_if_idle)


def _note_checkin(dbapi_connection: Any, connection_record: Any) -> None:
    if connection_record is not None:
        connection_record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
    # SQLAlchemy's documented "pessimistic" disconnect handling, limited to connections that
    # sat in the pool: one a request used a moment ago is almost surely alive, and a ping per
    # checkout would cost a round trip per transaction. A server restarted while connections
    # were busy costs one DatabaseUnavailable (503 or a worker retry); SQLAlchemy then
    # discards the whole pool.
    idle_since = connection_record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()  # the ping opened a transaction; leave none behind
    except Exception as exc:  # any failure: the pool must replace this connection
        raise DisconnectionError(str(exc)) from exc


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself, so writers can ask for IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _enter_wal_mode(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _enter_wal_mode(cursor: Any) -> None:
    # Asked for WAL while another connection holds the write lock of a file still in rollback
    # journal mode (as one does while switching it), SQLite answers "database is locked" at
    # once, without its busy handler. Processes starting together on a new database (make run)
    # met it about once in 240 starts. WAL persists in the file: this waits only for the switch.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _sqlite_on_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is locked"
    # when another writer got there first, whatever busy_timeout says; IMMEDIATE waits instead.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    if write == SINGLE_STATEMENT:
        return  # the statement is its own transaction (see one_statement)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def writer_lock(engine: Engine) -> AbstractContextManager[Any]:
    """Serialise this process's SQLite writers (a no-op context on PostgreSQL)."""
    # SQLite has one writer. Threads of one process (a worker's claim loop and its completer)
    # that met at BEGIN IMMEDIATE would wait in SQLite's busy handler, which sleeps 1, 2, 5,
    # 10... ms between tries; queueing on a lock hands the database over the moment it is free.
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(engine, threading.Lock())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside a transaction that will write (SQLite: BEGIN IMMEDIATE)."""
    with writer_lock(engine), engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def one_statement(engine: Engine) -> Iterator[Connection]:
    """Yield a connection for a single writing statement, which is atomic by itself.

    Both engines run it in autocommit: no BEGIN and COMMIT around it (PostgreSQL: two round
    trips; its row locks and its trigger's NOTIFY still commit with it). A writing statement
    in SQLite takes the write lock when it starts, as BEGIN IMMEDIATE would, and waits for it
    under busy_timeout the same way.
    """
    if engine.dialect.name == "sqlite":
        with writer_lock(engine), engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: SINGLE_STATEMENT})
            yield connection
            connection.commit()  # a no-op for the driver: nothing began
        return
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside a read-only transaction."""
    with engine.connect() as connection, connection.begin():
        yield connection


def translate_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Raise ``DatabaseUnavailable`` when the database cannot be reached or stays locked."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except OperationalError as exc:
            logger.warning("database unavailable: %s", exc.orig)
            raise DatabaseUnavailable() from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                logger.warning("database connection lost: %s", exc.orig)
                raise DatabaseUnavailable() from exc
            raise

    return wrapper
