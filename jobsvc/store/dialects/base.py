"""What the store asks of a database engine kind: the one interface both dialects implement.

Everything that differs between SQLite and PostgreSQL lives behind it: connection setup, how a
writing transaction begins and whether writers queue in the process, the driver's autocommit,
JSON batches unpacked as rows, JSON the driver returns, NOTIFY and waking idle workers, the
migration lock, and the database's clock and timestamp storage. Statements, transactions and
errors are the executor's (``store/execute.py``), the same for every dialect.
"""

from __future__ import annotations

import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeEngine

CHANNEL = "jobsvc_jobs"  # PostgreSQL's NOTIFY channel; migration 0002's trigger sends on it
WRITE_OPTION = "jobsvc_write"  # execution option: True, SINGLE_STATEMENT or absent (a reader)
SINGLE_STATEMENT = "single statement"
CANCEL_NOTICE = "cancel:"  # a NOTIFY payload that names a cancelled job, not a queue
QUEUES_NOTICE = "queues:"  # a NOTIFY payload: a queue was paused, resumed or limited
# PostgreSQL's channel of ended attempts and jobs (migration 0004's triggers send on it): the
# payload is comma-separated job ids, or EVERY_JOB where there were too many to list.
ENDED_CHANNEL = "jobsvc_ended"
EVERY_JOB = "*"


class Waker(Protocol):
    """Blocks an idle worker until jobs may be ready or a timeout passes."""

    notices_cancels: bool  # True if cancel_noticed() reports cancels as they happen

    def wait(self, timeout: float) -> bool:
        """Return True early if something changed, False after ``timeout`` seconds."""

    def cancel_noticed(self) -> bool:
        """Return True once after a notice that a running job was cancelled arrived."""

    def queues_changed(self) -> bool:
        """Return True once after a notice that a queue's settings changed arrived."""

    def close(self) -> None:
        """Release the waker's connection."""


class EndWatch(Protocol):
    """Tells one listener of a process that jobs may have ended (see ``jobsvc.waiting``)."""

    def wait(self, timeout: float) -> frozenset[int] | None:
        """Block until jobs may have ended and return their ids; None if it cannot say
        which (any job may have: look at every one waited for); empty after ``timeout``."""

    def close(self) -> None:
        """Release the watch's connection."""


class Executes(Protocol):
    """Something a statement can be executed on inside a transaction (``execute.Transaction``)."""

    def execute(self, statement: Any, values: Any = None) -> Any:
        """Execute ``statement`` and return its result."""


@dataclass(frozen=True)
class ConnectionSettings:
    """How one kind of process connects; a dialect uses what applies to it (SQLite: the pool).

    ``application_name`` tells the process kinds apart in ``pg_stat_activity``. The timeouts
    are PostgreSQL session settings in seconds (0: none); the keepalives are libpq's, and
    idle + interval x count is also the TCP user timeout. ``pool_size``/``max_overflow`` None
    keep the dialect's defaults. ``transaction_pooler``: the URL reaches a pooler in
    transaction mode (PgBouncer), which keeps neither prepared statements nor session state.
    """

    application_name: str = "jobsvc"
    pool_size: int | None = None
    max_overflow: int | None = None
    pool_timeout: float | None = None
    statement_timeout_seconds: float = 30.0
    idle_in_transaction_timeout_seconds: float = 60.0
    connect_timeout_seconds: int = 10
    keepalives_idle_seconds: int = 10
    keepalives_interval_seconds: int = 5
    keepalives_count: int = 3
    transaction_pooler: bool = False

    @property
    def dead_after_seconds(self) -> int:
        """How long a silent peer takes to count as gone: keepalives or unacknowledged data."""
        return self.keepalives_idle_seconds + (
            self.keepalives_interval_seconds * self.keepalives_count
        )


class PollingWaker:
    """Wakes only when the timeout passes: for a database whose commits cannot be waited on
    (PostgreSQL behind a transaction pooler, without a LISTEN connection around it)."""

    notices_cancels = False

    def __init__(self) -> None:
        self._closed = threading.Event()

    def wait(self, timeout: float) -> bool:
        self._closed.wait(timeout)
        return False

    def cancel_noticed(self) -> bool:
        return False

    def queues_changed(self) -> bool:
        return False  # nothing is heard: queue settings are read again on their schedule

    def close(self) -> None:
        self._closed.set()


@dataclass(frozen=True)
class JsonRows:
    """A JSON array parameter unpacked as rows: what to select from, its columns, their order.

    ``columns`` maps each requested name to an expression of the requested type; ``ordering``
    is the array index to ORDER BY, or None where the rows already come in the array's order.
    """

    source: Any
    columns: dict[str, Any]
    ordering: Any | None


class Dialect(ABC):
    """One engine kind, bound to one engine; ``dialect_for(engine)`` makes and caches it."""

    name: ClassVar[str]
    # Whether a WITH clause may hold an UPDATE whose rows an INSERT reads (PostgreSQL). Where
    # it may not (SQLite), migration 0004's triggers record every attempt, successes included.
    data_modifying_ctes: ClassVar[bool]

    def __init__(self, engine: Engine) -> None:
        # Weakly: dialect_for caches this object under the engine, which must stay collectable.
        self._engine = weakref.ref(engine)

    @property
    def engine(self) -> Engine:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("this dialect's engine is gone")
        return engine

    # -- connections -----------------------------------------------------------------------

    @staticmethod
    @abstractmethod
    def engine_options(
        database_url: str, connection: ConnectionSettings | None = None
    ) -> dict[str, Any]:
        """Return ``create_engine`` options for a URL of this kind, connecting as ``connection``
        says (None: the defaults)."""

    @abstractmethod
    def configure(self) -> None:
        """Attach this kind's connection setup to the engine (idempotent)."""

    @abstractmethod
    def worker_engine(self) -> Engine:
        """Return an engine for a worker's hot loop (its own pool where pools are shared)."""

    @abstractmethod
    def writer_lock(self) -> AbstractContextManager[Any]:
        """Return the context every writer of this process holds while it writes."""

    @abstractmethod
    def mark_writer(self, connection: Connection, *, single_statement: bool) -> Connection:
        """Prepare ``connection`` to write: in one transaction, or one autocommit statement."""

    @abstractmethod
    def driver_autocommit(self, driver_connection: Any, on: bool) -> None:
        """Switch a pooled DBAPI connection's autocommit (where it is not always on)."""

    @abstractmethod
    def unwritable_reason(self, connection: Connection) -> str | None:
        """Return why the database cannot take writes now (read-only, disk full), or None.

        Runs inside a reading transaction that is rolled back; it writes nothing.
        """

    # -- SQL -------------------------------------------------------------------------------

    @abstractmethod
    def json_rows(
        self, param_name: str, columns: Sequence[tuple[str, TypeEngine[Any]]]
    ) -> JsonRows:
        """Unpack the JSON array bound as ``param_name`` into rows of ``columns``.

        Each array element is an object with those keys. A ``JSON`` column's value is JSON
        text (returned as the JSON it holds); a ``UTCDateTime`` column's is epoch seconds.
        """

    @abstractmethod
    def decode_json(self, value: Any) -> Any:
        """Return a JSON column's value as the driver gave it, decoded."""

    @abstractmethod
    def notify(self, transaction: Executes, queues: Iterable[str]) -> None:
        """Tell listening workers, on commit, that ``queues`` have new jobs."""

    @abstractmethod
    def notify_cancel(self, transaction: Executes, job_id: int) -> None:
        """Tell listening workers, on commit, that running job ``job_id`` was cancelled."""

    @abstractmethod
    def notify_queues_changed(self, transaction: Executes, queue: str) -> None:
        """Tell listening workers, on commit, that ``queue``'s settings changed."""

    @abstractmethod
    def open_waker(
        self, connection: ConnectionSettings | None = None, listen_url: str = ""
    ) -> Waker:
        """Return a waker that sees other processes' commits (or notifications).

        ``listen_url``: where a session connection to wait on may be opened (PostgreSQL:
        around a transaction pooler); empty means the engine's own URL.
        """

    @abstractmethod
    def open_end_watch(self) -> EndWatch:
        """Return a watch that hears of jobs that may have ended (NOTIFY, or any commit)."""

    @abstractmethod
    def migration_lock(self) -> AbstractContextManager[None]:
        """Return a lock that only one process at a time holds, across hosts where it can."""

    @abstractmethod
    def try_exclusive(self, transaction: Executes, key: int) -> bool:
        """Return True if this writing transaction is now the only one doing ``key``'s work.

        Held until the transaction ends; False at once if another transaction holds it.
        """

    @abstractmethod
    def insert_ignoring_conflicts(self, table: Any) -> Any:
        """Return an INSERT into ``table`` that skips rows whose key is taken already."""

    # -- the clock (class-level: SQLAlchemy compiles and types have no engine) ---------------

    @staticmethod
    @abstractmethod
    def now_sql() -> str:
        """Return SQL for the database's current time, as its timestamps store it."""

    @classmethod
    @abstractmethod
    def now_plus_sql(cls, seconds_sql: str) -> str:
        """Return SQL for the database's current time plus ``seconds_sql`` seconds."""

    @classmethod
    @abstractmethod
    def periods_since_sql(cls, timestamp_sql: str, period_sql: str) -> str:
        """Return SQL for the whole periods of ``period_sql`` seconds from a past time to now."""

    @staticmethod
    @abstractmethod
    def timestamp_type() -> TypeEngine[Any]:
        """Return the column type that stores an aware UTC datetime."""

    @staticmethod
    @abstractmethod
    def epoch_minute_sql(timestamp_sql: str) -> str:
        """Return SQL for the whole minutes since the epoch of a stored timestamp (floored)."""
