"""Waking idle workers: LISTEN/NOTIFY on PostgreSQL, ``PRAGMA data_version`` on SQLite."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from typing import Protocol

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

CHANNEL = "jobsvc_jobs"
SQLITE_CHECK_SECONDS = 0.01  # how often an idle SQLite worker asks whether anything committed


def notify_queues(connection: Connection, queues: Iterable[str]) -> None:
    """Tell listening workers that ``queues`` have new jobs (PostgreSQL; sent on commit)."""
    if connection.dialect.name != "postgresql":
        return
    for queue in sorted(set(queues)):
        connection.execute(text("SELECT pg_notify(:channel, :queue)"),
                           {"channel": CHANNEL, "queue": queue})


class Waker(Protocol):
    """Blocks an idle worker until jobs may be ready or a timeout passes."""

    def wait(self, timeout: float) -> bool:
        """Return True early if something changed, False after ``timeout`` seconds."""

    def close(self) -> None:
        """Release the waker's connection."""


class PostgresWaker:
    """LISTENs on a connection of its own; any notification wakes the worker."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connection: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self._conninfo, autocommit=True)
            self._connection.execute(f"LISTEN {CHANNEL}")
        return self._connection

    def wait(self, timeout: float) -> bool:
        try:
            connection = self._connect()
            for _ in connection.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error as exc:
            # The database is away; sleep the interval and let the next claim report it.
            logger.warning("listen connection lost: %s", exc)
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class SQLiteWaker:
    """Polls ``PRAGMA data_version``, which changes when another connection commits; it costs
    no disk read, so an idle worker wakes within milliseconds without burning a core."""

    def __init__(self, engine: Engine) -> None:
        self._path = engine.url.database or ""
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
                time.sleep(min(SQLITE_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
                version = self._current()
                if version != self._version:
                    self._version = version
                    return True
        except sqlite3.Error as exc:
            logger.warning("sqlite wake check failed: %s", exc)
            time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def open_waker(engine: Engine) -> Waker:
    """Return the waker that suits ``engine``'s dialect."""
    if engine.dialect.name == "postgresql":
        return PostgresWaker(engine)
    if engine.dialect.name == "sqlite":
        return SQLiteWaker(engine)
    raise ValueError(f"unsupported database: {engine.dialect.name}")
