"""The dialect seam's contract, run the same on SQLite and on PostgreSQL.

Every test goes through the interface the store uses (``dialect_for``, ``Executor``) on a real,
migrated database; where the two kinds differ by design (only SQLite has one writer), the test
says so in its name and runs on that kind alone.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import JSON, Integer, String, bindparam, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from jobsvc.errors import DatabaseUnavailable
from jobsvc.models import Job
from jobsvc.store import (
    NewJob,
    configure_engine,
    dialect_for,
    engine_options,
    open_waker,
    outcomes,
)
from jobsvc.store.dialects import kind_for_url
from jobsvc.store.dialects import postgresql as postgresql_dialect
from jobsvc.store.execute import Executor, translate_errors
from jobsvc.store.insertion import batch_parameter, insert_statement
from jobsvc.timestamps import UTCDateTime, db_now, db_now_plus

jobs = Job.__table__
JOB = NewJob(
    type="noop", payload={"secret": "hunter2"}, queue="default", priority=0, max_attempts=3
)
WAIT_SECONDS = 10.0  # the most a condition that should come true at once may take
on_sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
on_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def executor(engine) -> Executor:
    return Executor(engine)


@pytest.fixture
def insert(executor):
    return executor.prepare(insert_statement(executor.dialect))


@pytest.fixture
def other_engine(engine):
    """A second engine on the same database: what another process would have."""
    url = engine.url.render_as_string(hide_password=False)
    other = create_engine(url, **engine_options(url))
    configure_engine(other)
    yield other
    other.dispose()


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_dialect_for_gives_one_object_per_engine(engine, other_engine):
    assert dialect_for(engine) is dialect_for(engine)
    assert dialect_for(other_engine) is not dialect_for(engine)
    assert type(dialect_for(other_engine)) is type(dialect_for(engine))


@pytest.mark.parametrize("url", ["sqlite:////tmp/x.sqlite3", "postgresql+psycopg://h/db"])
def test_every_kind_hides_bound_values_from_error_messages(url):
    assert kind_for_url(url).engine_options(url)["hide_parameters"] is True


def test_an_unsupported_database_is_refused_by_name():
    with pytest.raises(ValueError, match="unsupported database: mysql"):
        engine_options("mysql://h/db")


def test_the_clock_moves_and_now_plus_adds_seconds(executor):
    clock = select(db_now(), db_now_plus(bindparam("seconds", 90.5)))
    with executor.read() as transaction:
        now, later = transaction.execute(clock).one()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)
    assert later - now == timedelta(seconds=90.5)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:  # a new transaction sees a later clock
        with executor.read() as transaction:
            moved = transaction.execute(select(db_now())).scalar_one()
        if moved > now:
            break
    assert moved > now


def test_json_rows_unpack_in_the_batch_order_with_their_types(executor):
    columns = (("n", Integer()), ("label", String()), ("doc", JSON()), ("at", UTCDateTime()))
    rows = executor.dialect.json_rows("batch", columns)
    query = select(*rows.columns.values()).select_from(rows.source)
    if rows.ordering is not None:
        query = query.order_by(rows.ordering)
    at = datetime(2030, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    batch = [
        {"n": n, "label": f"job {n}", "doc": f'{{"k": [{n}, null]}}', "at": at.timestamp()}
        for n in (5, 3, 9, 1, 7, 2)
    ]  # not sorted: the order must be the batch's
    with executor.read() as transaction:
        got = transaction.execute(query, {"batch": json.dumps(batch)}).all()
    assert [tuple(row) for row in got] == [
        (item["n"], item["label"], {"k": [item["n"], None]}, at) for item in batch
    ]


def test_a_driver_statement_gives_the_same_rows_alone_or_in_a_transaction(executor, insert):
    alone = executor.run_one(insert, {"batch": batch_parameter([JOB, JOB])})
    with executor.write() as transaction:
        inside = transaction.run(insert, {"batch": batch_parameter([JOB, JOB])})
    ids = sorted(row[0] for row in alone) + sorted(row[0] for row in inside)
    assert len(ids) == 4 and ids == sorted(ids)
    with executor.read() as transaction:
        stored = transaction.execute(select(jobs.c.id).order_by(jobs.c.id)).scalars().all()
    assert stored == ids


def test_decode_json_reads_json_columns_as_the_driver_returns_them(executor, insert):
    (row,) = executor.run_one(insert, {"batch": batch_parameter([JOB])})
    payload = executor.prepare(select(jobs.c.payload).where(jobs.c.id == bindparam("id")))
    with executor.read() as transaction:
        (raw,) = transaction.run(payload, {"id": row[0]})
    assert executor.dialect.decode_json(raw[0]) == {"secret": "hunter2"}


@pytest.mark.parametrize("where", ["alone", "in a transaction"])
def test_a_failing_statement_hides_its_bound_values_alone_or_in_a_transaction(executor, where):
    broken = NewJob(
        type=None,
        payload={"secret": "hunter2"},
        queue="default",  # type: ignore
        priority=0,
        max_attempts=3,
    )  # type is NOT NULL
    statement = executor.prepare(insert_statement(executor.dialect))
    values = {"batch": batch_parameter([broken])}
    with pytest.raises(DBAPIError) as raised:
        if where == "alone":
            executor.run_one(statement, values)
        else:
            with executor.write() as transaction:
                transaction.run(statement, values)
    # PostgreSQL's own DETAIL may echo the failing row; the bound batch itself is never shown.
    assert values["batch"] not in str(raised.value)


@on_sqlite
def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_start(executor, engine):
    with executor.write():
        other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


@on_sqlite
def test_a_second_sqlite_writer_waits_for_the_first_rather_than_failing(
    executor, other_engine, insert
):
    second = Executor(other_engine)  # another process's engine: its own writer lock
    first_holds, first_done, results = threading.Event(), threading.Event(), []

    def write_then_wait() -> None:
        with executor.write() as transaction:
            transaction.run(insert, {"batch": batch_parameter([JOB])})
            first_holds.set()
            first_done.wait(WAIT_SECONDS)

    first = _in_thread(write_then_wait)
    assert first_holds.wait(WAIT_SECONDS)

    def read_then_write() -> None:
        with second.write() as transaction:  # a deferred BEGIN would fail at the write
            count = transaction.execute(select(jobs.c.id)).all()
            transaction.run(
                second.prepare(insert_statement(second.dialect)), {"batch": batch_parameter([JOB])}
            )
            results.append(len(count))

    writer = _in_thread(read_then_write)
    writer.join(0.2)
    assert writer.is_alive()  # waiting at BEGIN IMMEDIATE, not failed
    first_done.set()
    first.join(WAIT_SECONDS)
    writer.join(WAIT_SECONDS)
    assert results == [1]  # it began after the first committed, and saw its row


@on_sqlite
def test_the_sqlite_writer_lock_queues_this_process_writers_fast_path_included(executor, insert):
    holding, release, stored = threading.Event(), threading.Event(), []

    def hold() -> None:
        with executor.write():
            holding.set()
            release.wait(WAIT_SECONDS)

    holder = _in_thread(hold)
    assert holding.wait(WAIT_SECONDS)
    fast = _in_thread(
        lambda: stored.extend(executor.run_one(insert, {"batch": batch_parameter([JOB])}))
    )
    fast.join(0.2)
    assert fast.is_alive() and not stored  # queued on the lock, not in SQLite's busy handler
    release.set()
    holder.join(WAIT_SECONDS)
    fast.join(WAIT_SECONDS)
    assert len(stored) == 1


def test_the_waker_times_out_when_nothing_commits_and_wakes_on_commit(engine, executor, insert):
    waker = open_waker(engine)
    try:
        assert waker.wait(0.1) is False  # nothing committed
        with executor.write() as transaction:
            transaction.run(insert, {"batch": batch_parameter([JOB])})
            executor.dialect.notify(transaction, {"default"})
            assert waker.wait(0.1) is False  # not before the commit
        started = time.monotonic()
        assert waker.wait(WAIT_SECONDS) is True
        assert time.monotonic() - started < WAIT_SECONDS / 2
        assert waker.wait(0.1) is False  # one commit wakes once
    finally:
        waker.close()


def test_a_cancel_notice_is_told_apart_where_the_dialect_sends_one(engine, executor, insert):
    waker = open_waker(engine)
    try:
        waker.wait(0.1)  # the waker starts listening (PostgreSQL) or reads the version
        with executor.write() as transaction:
            transaction.run(insert, {"batch": batch_parameter([JOB])})
            executor.dialect.notify(transaction, {"default"})
        assert waker.wait(WAIT_SECONDS) is True
        assert waker.cancel_noticed() is False  # an ordinary wake-up is no cancel
        with executor.write() as transaction:
            executor.dialect.notify_cancel(transaction, 42)
            transaction.run(insert, {"batch": batch_parameter([JOB])})  # SQLite: a commit
        assert waker.wait(WAIT_SECONDS) is True
        assert waker.cancel_noticed() is waker.notices_cancels  # PostgreSQL only, then polled
        assert waker.cancel_noticed() is False  # told once
    finally:
        waker.close()


def test_the_migration_lock_is_exclusive_between_two_connections(engine, other_engine):
    holding, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with dialect_for(engine).migration_lock():
            holding.set()
            release.wait(WAIT_SECONDS)

    def enter() -> None:
        with dialect_for(other_engine).migration_lock():
            second_in.set()

    holder = _in_thread(hold)
    assert holding.wait(WAIT_SECONDS)
    waiter = _in_thread(enter)
    assert not second_in.wait(0.3)
    release.set()
    assert second_in.wait(WAIT_SECONDS)
    holder.join(WAIT_SECONDS)
    waiter.join(WAIT_SECONDS)


def _kill_other_connections(engine) -> None:
    plain = make_url(engine.url).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@on_postgresql
@pytest.mark.parametrize("where", ["alone", "in a transaction"])
def test_a_lost_connection_is_unavailable_once_then_the_pool_recovers(
    executor, insert, monkeypatch, where
):
    monkeypatch.setattr(postgresql_dialect, "PING_AFTER_IDLE_SECONDS", 3600.0)  # no ping

    @translate_errors
    def enqueue() -> list[int]:
        values = {"batch": batch_parameter([JOB])}
        if where == "alone":
            return [row[0] for row in executor.run_one(insert, values)]
        with executor.write() as transaction:
            return [row[0] for row in transaction.run(insert, values)]

    enqueue()
    _kill_other_connections(executor.engine)
    with pytest.raises(DatabaseUnavailable):
        enqueue()
    assert len(enqueue()) == 1


def test_the_end_watch_hears_of_a_job_that_ended(engine, job_store, lease_store):
    (job_id,) = job_store.enqueue([JOB])
    watch = dialect_for(engine).open_end_watch()
    try:
        watch.wait(0.05)  # connects: what ended before it cannot be named
        (job,) = lease_store.claim(None, 1, "w-1", lease_seconds=30)
        lease_store.finish([outcomes.succeeded(job, None)])
        deadline = time.monotonic() + 10
        heard = frozenset()
        while not heard and time.monotonic() < deadline:
            heard = watch.wait(0.5)
            # None: "some job may have ended" (SQLite cannot say which); else the ids.
            heard = frozenset({job_id}) if heard is None else heard
        assert job_id in heard
    finally:
        watch.close()


def test_periods_since_counts_whole_periods_from_a_past_time(executor):
    from jobsvc.timestamps import periods_since

    past = datetime.now(UTC) - timedelta(seconds=25)
    query = select(
        periods_since(bindparam("t", past, type_=UTCDateTime()), bindparam("p", 10.0)),
        periods_since(bindparam("t2", past, type_=UTCDateTime()), bindparam("p2", 0.5)),
    )
    with executor.read() as transaction:
        assert tuple(transaction.execute(query).one()) in {(2, 50), (2, 51)}


def test_insert_ignoring_conflicts_skips_a_taken_key(executor):
    from jobsvc.models import ScheduleTick

    ticks = ScheduleTick.__table__
    statement = (
        dialect_for(executor.engine)
        .insert_ignoring_conflicts(ticks)
        .values(schedule="s", tick_at=datetime(2030, 1, 1, tzinfo=UTC))
        .returning(ticks.c.schedule)
    )
    with executor.write() as transaction:
        assert transaction.run(statement) == [("s",)]
        assert transaction.run(statement) == []


def test_try_exclusive_lets_one_writing_transaction_at_a_time_do_a_task(
    backend, executor, other_engine
):
    key = 12345
    inside, release, answers = threading.Event(), threading.Event(), []

    def hold() -> None:
        with executor.write() as transaction:
            answers.append(executor.dialect.try_exclusive(transaction, key))
            inside.set()
            release.wait(WAIT_SECONDS)

    holder = _in_thread(hold)
    assert inside.wait(WAIT_SECONDS)
    other = Executor(other_engine)
    if backend == "postgresql":  # SQLite's second writer waits for the first
        with other.write() as transaction:
            answers.append(other.dialect.try_exclusive(transaction, key))
    release.set()
    holder.join(WAIT_SECONDS)
    with other.write() as transaction:
        answers.append(other.dialect.try_exclusive(transaction, key))
    expected = [True, False, True] if backend == "postgresql" else [True, True]
    assert answers == expected


def test_a_queue_settings_notice_is_told_apart_where_the_dialect_sends_one(
    engine, executor, insert
):
    waker = open_waker(engine)
    try:
        waker.wait(0.1)  # the waker starts listening (PostgreSQL) or reads the version
        with executor.write() as transaction:
            executor.dialect.notify_queues_changed(transaction, "emails")
            transaction.run(insert, {"batch": batch_parameter([JOB])})  # SQLite: a commit
        assert waker.wait(WAIT_SECONDS) is True
        assert waker.queues_changed() is waker.notices_cancels  # PostgreSQL only
        assert waker.queues_changed() is False  # told once
        assert waker.cancel_noticed() is False  # and it is no cancel
    finally:
        waker.close()
