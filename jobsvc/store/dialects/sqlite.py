"""SQLite: one file, one writer, WAL; timestamps as epoch seconds; idle workers poll the file."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Float, Integer, Text, bindparam, column, event, func, literal_column
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator, TypeEngine

from .base import (
    SINGLE_STATEMENT,
    WRITE_OPTION,
    ConnectionSettings,
    Dialect,
    EndWatch,
    Executes,
    JsonRows,
    Waker,
)
from .jsontext import load_json

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
PROBE_BUSY_TIMEOUT_MS = 500  # the health probe's wait for a busy writer
MIN_FREE_BYTES = 1 << 20  # /health calls a disk with less free than this full
POOL_TIMEOUT_SECONDS = 5.0  # JOBSVC_POOL_TIMEOUT_SECONDS overrides it
WAKE_CHECK_SECONDS = 0.01  # how often an idle worker asks whether anything committed


class EpochSeconds(TypeDecorator[datetime]):
    """An aware datetime stored as REAL seconds since the epoch.

    SQLite has no timestamp type; a number keeps ``run_at <= now`` a numeric comparison an
    index can serve, and lets ``now + seconds`` be plain arithmetic in SQL.
    """

    impl = Float()
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> float | None:
        return None if value is None else value.timestamp()

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(float(value), UTC)


class SQLiteDialect(Dialect):
    """SQLite through the standard library's sqlite3."""

    name = "sqlite"
    data_modifying_ctes = False

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # SQLite has one writer. Threads of one process (a worker's claim loop and its
        # completer) that met at BEGIN IMMEDIATE would wait in SQLite's busy handler, which
        # sleeps 1, 2, 5, 10... ms between tries; a lock hands the file over the moment it is
        # free.
        self._writer_lock = threading.Lock()

    @staticmethod
    def engine_options(
        database_url: str, connection: ConnectionSettings | None = None
    ) -> dict[str, Any]:
        # hide_parameters: an error message would otherwise carry bound values (payloads,
        # results, token hashes) into every log line that prints it. check_same_thread is
        # off because worker threads share the pool.
        # pool_timeout: a request that finds every connection taken answers 503 soon
        # (DatabaseUnavailable) instead of after SQLAlchemy's 30 s. json_deserializer: a
        # stored result too deep or too large to decode must not make its job unreadable.
        return {
            "connect_args": {"check_same_thread": False},
            "hide_parameters": True,
            "pool_timeout": POOL_TIMEOUT_SECONDS,
            "json_deserializer": load_json,
        }

    def configure(self) -> None:
        if not event.contains(self.engine, "connect", _on_connect):
            event.listen(self.engine, "do_connect", _create_privately)
            event.listen(self.engine, "connect", _on_connect)
            event.listen(self.engine, "begin", _on_begin)

    def worker_engine(self) -> Engine:
        return self.engine  # one writer per file: a second pool would only queue behind it

    def writer_lock(self) -> threading.Lock:
        return self._writer_lock

    def mark_writer(self, connection: Connection, *, single_statement: bool) -> Connection:
        # Read by _on_begin: BEGIN IMMEDIATE, or no BEGIN for a statement that is its own
        # transaction (a writing statement takes the write lock when it starts, as BEGIN
        # IMMEDIATE would, and waits for it under busy_timeout the same way).
        return connection.execution_options(
            **{WRITE_OPTION: SINGLE_STATEMENT if single_statement else True}
        )

    def driver_autocommit(self, driver_connection: Any, on: bool) -> None:
        pass  # always on: isolation_level None (see _on_connect)

    def unwritable_reason(self, connection: Connection) -> str | None:
        path = self.engine.url.database or ""
        folder = os.path.dirname(path.removeprefix("file:")) or "."
        try:
            stats = os.statvfs(folder)
        except OSError as exc:
            return f"its folder cannot be read: {exc.strerror}"
        if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
            return f"the disk holding it is full (under {MIN_FREE_BYTES} bytes free)"
        driver = connection.connection.driver_connection
        # A write statement that matches no row: SQLite refuses it on a read-only file and
        # changes nothing otherwise. A short busy timeout: a busy writer is not a fault.
        driver.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_TIMEOUT_MS}")
        try:
            driver.execute("UPDATE jobs SET id = id WHERE 0")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                return str(exc)
        finally:
            driver.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return None

    def json_rows(
        self, param_name: str, columns: Sequence[tuple[str, TypeEngine[Any]]]
    ) -> JsonRows:
        each = (
            func.json_each(bindparam(param_name, type_=Text))
            .table_valued("value", column("key", Integer))
            .alias("e")
        )
        # Paths as literals: the statement's one bound parameter is the batch (DriverStatement).
        # JSON stays text, as SQLite stores it; a CAST would give it numeric affinity.
        # Epoch seconds are what EpochSeconds stores already.
        values = {
            name: func.json_extract(each.c.value, literal_column(f"'$.{name}'"), type_=type_).label(
                name
            )
            for name, type_ in columns
        }
        return JsonRows(each, values, each.c.key)

    def decode_json(self, value: Any) -> Any:
        return load_json(value)  # sqlite3 returns JSON columns as their text

    def notify(self, transaction: Executes, queues: Iterable[str]) -> None:
        pass  # idle workers see the commit itself (PRAGMA data_version)

    def notify_cancel(self, transaction: Executes, job_id: int) -> None:
        pass  # no channel: workers check their running jobs for cancellation each second

    def notify_queues_changed(self, transaction: Executes, queue: str) -> None:
        pass  # no channel: workers read the queues' settings again each QUEUE_SETTINGS_SECONDS

    def open_waker(
        self, connection: ConnectionSettings | None = None, listen_url: str = ""
    ) -> Waker:
        return SQLiteWaker(self.engine.url.database or "")

    def open_end_watch(self) -> EndWatch:
        return SQLiteEndWatch(SQLiteWaker(self.engine.url.database or ""))

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        lock_path = Path(f"{self.engine.url.database}.migrate-lock")
        with os.fdopen(
            os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a"
        ) as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def try_exclusive(self, transaction: Executes, key: int) -> bool:
        return True  # a writing transaction holds the one writer lock (BEGIN IMMEDIATE)

    def insert_ignoring_conflicts(self, table: Any) -> Any:
        return sqlite_insert(table).on_conflict_do_nothing()

    @classmethod
    def periods_since_sql(cls, timestamp_sql: str, period_sql: str) -> str:
        # CAST truncates toward zero, which is floor for the past times this is asked about.
        return f"CAST(({cls.now_sql()} - {timestamp_sql}) / {period_sql} AS INTEGER)"

    @staticmethod
    def now_sql() -> str:
        # unixepoch('subsec') needs SQLite 3.42; julianday works everywhere, to the millisecond.
        return "((julianday('now') - 2440587.5) * 86400.0)"

    @classmethod
    def now_plus_sql(cls, seconds_sql: str) -> str:
        return f"({cls.now_sql()} + {seconds_sql})"

    @staticmethod
    def timestamp_type() -> TypeEngine[Any]:
        return EpochSeconds()

    @staticmethod
    def epoch_minute_sql(timestamp_sql: str) -> str:
        # Epoch seconds are positive, so truncating is flooring (SQLite's floor() is optional).
        return f"CAST({timestamp_sql} / 60 AS INTEGER)"


def _create_privately(dialect: Any, connection_record: Any, cargs: Any, cparams: Any) -> None:
    # Before sqlite3 opens the file: a new database and its folder are made readable by their
    # owner only (0600, 0700). SQLite gives the -wal and -shm files the main file's mode.
    path = cargs[0] if cargs else cparams.get("database", "")
    if not path or path == ":memory:" or str(path).startswith("file:") or os.path.exists(path):
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # another process made it first


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself, so writers can ask for IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _enter_wal_mode(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _enter_wal_mode(cursor: Any) -> None:
    # Asked for WAL while another connection holds the write lock of a file still in rollback
    # journal mode (as one does while switching it), SQLite answers "database is locked" at
    # once, without its busy handler. Processes starting together on a new database (make run)
    # met it about once in 240 starts. WAL persists in the file: this waits only for the switch.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
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


def _on_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is locked"
    # when another writer got there first, whatever busy_timeout says; IMMEDIATE waits instead.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    if write == SINGLE_STATEMENT:
        return  # the statement is its own transaction
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class SQLiteWaker:
    """Polls ``PRAGMA data_version``, which changes when another connection commits; it costs
    no disk read, so an idle worker wakes within milliseconds without burning a core."""

    notices_cancels = False  # a commit does not say what changed: workers poll

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None

    def _current(self) -> int:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, check_same_thread=False)
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        try:
            if self._version is None:
                self._version = self._current()
            while time.monotonic() < deadline:
                time.sleep(min(WAKE_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
                version = self._current()
                if version != self._version:
                    self._version = version
                    return True
        except sqlite3.Error as exc:
            logger.warning("sqlite wake check failed: %s", exc)
            time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def cancel_noticed(self) -> bool:
        return False  # a commit does not say what it changed

    def queues_changed(self) -> bool:
        return False  # the same

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class SQLiteEndWatch:
    """Any commit to the file may have ended a job: the data-version watch cannot say which."""

    def __init__(self, waker: SQLiteWaker) -> None:
        self._waker = waker

    def wait(self, timeout: float) -> frozenset[int] | None:
        return None if self._waker.wait(timeout) else frozenset()

    def close(self) -> None:
        self._waker.close()
