"""PostgreSQL through psycopg 3: pooled connections pinged when idle, LISTEN/NOTIFY, timestamptz."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Text,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    func,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.types import TypeDecorator, TypeEngine

from ...timestamps import UTCDateTime
from .base import (
    CANCEL_NOTICE,
    CHANNEL,
    ENDED_CHANNEL,
    EVERY_JOB,
    QUEUES_NOTICE,
    ConnectionSettings,
    Dialect,
    EndWatch,
    Executes,
    JsonRows,
    PollingWaker,
    Waker,
)
from .jsontext import load_json

logger = logging.getLogger(__name__)

PING_AFTER_IDLE_SECONDS = 2.0  # a pooled connection idle this long is pinged at checkout
POOL_SIZE = 10
POOL_OVERFLOW = 10
POOL_TIMEOUT_SECONDS = 5.0  # JOBSVC_POOL_TIMEOUT_SECONDS overrides it
# Any fixed 64-bit number works; all jobsvc processes on one database must agree on it.
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"jobsvc-migrate").digest()[:8], "big", signed=True
)
_IDLE_SINCE = "jobsvc_idle_since"
_NO_LOCK = nullcontext()  # every connection is its own writer: MVCC and row locks suffice


class UTCTimestamptz(TypeDecorator[datetime]):
    """An aware datetime as ``timestamptz``, always handed back in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


class PostgreSQLDialect(Dialect):
    """PostgreSQL through psycopg 3."""

    name = "postgresql"
    data_modifying_ctes = True

    @staticmethod
    def engine_options(
        database_url: str, connection: ConnectionSettings | None = None
    ) -> dict[str, Any]:
        # No pool_pre_ping: a round trip before every transaction was a fifth of a POST /jobs;
        # configure pings only connections that sat idle in the pool (see _ping_if_idle).
        # hide_parameters: see SQLiteDialect.engine_options.
        # pool_timeout, json_deserializer: see SQLiteDialect.engine_options.
        connection = connection or ConnectionSettings()
        return {
            "pool_size": POOL_SIZE if connection.pool_size is None else connection.pool_size,
            "max_overflow": (
                POOL_OVERFLOW if connection.max_overflow is None else connection.max_overflow
            ),
            "hide_parameters": True,
            "pool_timeout": POOL_TIMEOUT_SECONDS,
            "json_deserializer": load_json,
            "connect_args": connect_args(database_url, connection),
        }

    def configure(self) -> None:
        pool = self.engine.pool
        if not event.contains(pool, "checkout", _ping_if_idle):
            event.listen(pool, "checkin", _note_checkin)
            event.listen(pool, "checkout", _ping_if_idle)

    def worker_engine(self) -> Engine:
        # A statement on a dead connection raises DatabaseUnavailable, SQLAlchemy then
        # discards the whole pool, and the worker retries with fresh connections.
        url = self.engine.url
        options = self.engine_options(url.render_as_string(hide_password=False))
        options["pool_timeout"] = getattr(self.engine.pool, "_timeout", POOL_TIMEOUT_SECONDS)
        return create_engine(url, **options)

    def writer_lock(self) -> AbstractContextManager[Any]:
        return _NO_LOCK

    def mark_writer(self, connection: Connection, *, single_statement: bool) -> Connection:
        # A single statement is atomic by itself: no BEGIN and COMMIT round trips around it
        # (its row locks and its trigger's NOTIFY still commit with it).
        if single_statement:
            return connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def driver_autocommit(self, driver_connection: Any, on: bool) -> None:
        driver_connection.autocommit = on

    def unwritable_reason(self, connection: Connection) -> str | None:
        in_recovery, read_only = connection.exec_driver_sql(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        ).one()
        if in_recovery:
            return "the server is a standby in recovery (read-only)"
        if read_only == "on":
            return "transactions are read-only (default_transaction_read_only is on)"
        return None

    def json_rows(
        self, param_name: str, columns: Sequence[tuple[str, TypeEngine[Any]]]
    ) -> JsonRows:
        rows = (
            func.json_to_recordset(cast(bindparam(param_name, type_=Text), JSON))
            .table_valued(
                *(column(name, _recordset_type(type_)) for name, type_ in columns),
            )
            .render_derived(name="v", with_types=True)
        )
        values = {name: _from_recordset(rows.c[name], type_) for name, type_ in columns}
        # json_to_recordset yields the array in order, and a statement that neither joins nor
        # sorts it keeps that order (an INSERT draws its ids from the sequence in it).
        return JsonRows(rows, values, None)

    def decode_json(self, value: Any) -> Any:
        return value  # psycopg decodes json columns itself

    def notify(self, transaction: Executes, queues: Iterable[str]) -> None:
        for queue in sorted(set(queues)):
            transaction.execute(
                text("SELECT pg_notify(:channel, :queue)"), {"channel": CHANNEL, "queue": queue}
            )

    def notify_cancel(self, transaction: Executes, job_id: int) -> None:
        transaction.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": f"{CANCEL_NOTICE}{job_id}"},
        )

    def notify_queues_changed(self, transaction: Executes, queue: str) -> None:
        transaction.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": f"{QUEUES_NOTICE}{queue}"},
        )

    def open_waker(
        self, connection: ConnectionSettings | None = None, listen_url: str = ""
    ) -> Waker:
        connection = connection or ConnectionSettings()
        if not listen_url and connection.transaction_pooler:
            # A pooler in transaction mode hands each transaction any server connection:
            # a LISTEN there hears nothing for certain. Poll instead.
            return PollingWaker()
        url = listen_url or self.engine.url.render_as_string(hide_password=False)
        listening = ConnectionSettings(**{**vars(connection), "transaction_pooler": False})
        return PostgresWaker(url, connect_args(url, listening))

    def open_end_watch(self) -> EndWatch:
        return PostgresEndWatch(self.engine)

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        # Transaction-scoped: released when its transaction ends, whatever happens, and safe
        # behind a transaction pooler (a session lock would stay on whichever server
        # connection took it). The lock's transaction waits idle while the migration runs on
        # another connection, so the idle-in-transaction and statement timeouts are off in it.
        lock = text("SELECT pg_advisory_xact_lock(:key)")
        with self.engine.connect() as connection, connection.begin():
            connection.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
            yield

    def try_exclusive(self, transaction: Executes, key: int) -> bool:
        # A transaction-scoped advisory lock: released by COMMIT or ROLLBACK, even on a crash.
        taken = transaction.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
        return bool(taken.scalar())

    def insert_ignoring_conflicts(self, table: Any) -> Any:
        return pg_insert(table).on_conflict_do_nothing()

    @staticmethod
    def now_sql() -> str:
        return "now()"

    @classmethod
    def periods_since_sql(cls, timestamp_sql: str, period_sql: str) -> str:
        return f"floor(extract(epoch FROM (now() - {timestamp_sql})) / {period_sql})::integer"

    @classmethod
    def now_plus_sql(cls, seconds_sql: str) -> str:
        return f"(now() + make_interval(secs => {seconds_sql}))"

    @staticmethod
    def timestamp_type() -> TypeEngine[Any]:
        return UTCTimestamptz()

    @staticmethod
    def epoch_minute_sql(timestamp_sql: str) -> str:
        return f"CAST(floor(extract(epoch FROM {timestamp_sql}) / 60) AS BIGINT)"


def connect_args(database_url: str, connection: ConnectionSettings) -> dict[str, Any]:
    """Return psycopg's connect arguments: who connects, keepalives, the session's limits.

    The URL's own ``application_name`` and ``options`` win over ours.
    """
    query = make_url(database_url).query
    args: dict[str, Any] = {
        "application_name": query.get("application_name", connection.application_name),
        "connect_timeout": connection.connect_timeout_seconds,
        "keepalives": 1,
        "keepalives_idle": connection.keepalives_idle_seconds,
        "keepalives_interval": connection.keepalives_interval_seconds,
        "keepalives_count": connection.keepalives_count,
        # Keepalives probe only a silent connection; a statement sent to a peer that vanished
        # would be retransmitted for about 15 minutes. This bounds that too.
        "tcp_user_timeout": connection.dead_after_seconds * 1000,
    }
    if connection.transaction_pooler:
        # PgBouncer (before 1.21) keeps no prepared statement across transactions, and
        # refuses an options startup parameter: the timeouts belong on the role there.
        args["prepare_threshold"] = None
        return args
    limits = [
        ("statement_timeout", connection.statement_timeout_seconds),
        ("idle_in_transaction_session_timeout", connection.idle_in_transaction_timeout_seconds),
    ]
    ours = " ".join(f"-c {name}={round(value * 1000)}" for name, value in limits)
    theirs = query.get("options")
    args["options"] = f"{ours} {theirs}" if theirs else ours  # later -c wins: theirs
    return args


def _recordset_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(type_, JSON):
        return Text()  # the batch carries JSON text; cast below
    if isinstance(type_, UTCDateTime):
        return Float()  # epoch seconds
    return type_


def _from_recordset(value: Any, type_: TypeEngine[Any]) -> Any:
    if isinstance(type_, JSON):
        return cast(value, JSON)
    if isinstance(type_, UTCDateTime):
        return type_coerce(func.to_timestamp(value), UTCDateTime())
    return value


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


class PostgresWaker:
    """LISTENs on a connection of its own; any notification wakes the worker."""

    notices_cancels = True  # a cancel of a running job is NOTIFYed

    def __init__(self, url: str, connect_args: dict[str, Any]) -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._connect_args = connect_args
        self._connection: psycopg.Connection | None = None
        self._cancel_noticed = False
        self._queues_changed = False

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self._conninfo, autocommit=True, **self._connect_args
            )
            self._connection.execute(f"LISTEN {CHANNEL}")
        return self._connection

    def wait(self, timeout: float) -> bool:
        try:
            connection = self._connect()
            for notice in connection.notifies(timeout=timeout, stop_after=1):
                if notice.payload.startswith(CANCEL_NOTICE):
                    self._cancel_noticed = True
                elif notice.payload.startswith(QUEUES_NOTICE):
                    self._queues_changed = True
                return True
            return False
        except psycopg.Error as exc:
            # The database is away; sleep the interval and let the next claim report it.
            logger.warning("listen connection lost: %s", exc)
            self.close()
            time.sleep(timeout)
            return False

    def cancel_noticed(self) -> bool:
        noticed, self._cancel_noticed = self._cancel_noticed, False
        return noticed

    def queues_changed(self) -> bool:
        changed, self._queues_changed = self._queues_changed, False
        return changed

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresEndWatch:
    """LISTENs on ``jobsvc_ended`` on a connection of its own: one per API process."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connection: psycopg.Connection | None = None

    def wait(self, timeout: float) -> frozenset[int] | None:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(self._conninfo, autocommit=True)
                self._connection.execute(f"LISTEN {ENDED_CHANNEL}")
                return None  # anything that ended before LISTEN went unheard: look at all
            ids: set[int] = set()
            for notice in self._connection.notifies(timeout=timeout, stop_after=1):
                if notice.payload == EVERY_JOB:
                    return None
                ids.update(int(part) for part in notice.payload.split(",") if part)
            # Whatever else arrived meanwhile, in the same look.
            for notice in self._connection.notifies(timeout=0.0):
                if notice.payload == EVERY_JOB:
                    return None
                ids.update(int(part) for part in notice.payload.split(",") if part)
            return frozenset(ids)
        except (psycopg.Error, ValueError) as exc:
            logger.warning("listen connection for ended jobs lost: %s", exc)
            self.close()
            time.sleep(min(timeout, 1.0))
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
