"""Connections: PostgreSQL's pooled ones after the server dropped them (pinged when idle, not per
use), and SQLite's first ones while another process holds the file."""

from __future__ import annotations

import sqlite3
import threading

import psycopg
import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from jobsvc.errors import DatabaseUnavailable
from jobsvc.models import Job, JobStatus
from jobsvc.store import JobStore, NewJob, configure_engine, engine_options
from jobsvc.store.dialects import postgresql as postgresql_dialect
from jobsvc.store.driver import DriverStatement

JOB = NewJob(type="noop", payload={}, queue="default", priority=0, max_attempts=3)


# SQLite has no server to drop a connection: these run on PostgreSQL only.
on_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def pg_store(app):
    with app.app_context():
        from jobsvc.extensions import db

        yield JobStore(db.engine)


def _kill_pooled_connections(store: JobStore) -> None:
    # What a server restart does to the pool: every connection it holds is dead.
    plain = make_url(store.engine.url).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed and killed[0] >= 1


@on_postgresql
def test_a_connection_dropped_while_idle_is_replaced_without_an_error(pg_store, monkeypatch):
    monkeypatch.setattr(postgresql_dialect, "PING_AFTER_IDLE_SECONDS", 0.0)
    pg_store.enqueue([JOB])
    _kill_pooled_connections(pg_store)
    (job_id,) = pg_store.enqueue([JOB])
    assert pg_store.get(job_id).type == "noop"


@on_postgresql
def test_a_connection_dropped_while_in_use_costs_one_unavailable_then_recovers(
    pg_store, monkeypatch
):
    monkeypatch.setattr(postgresql_dialect, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pg_store.enqueue([JOB])
    _kill_pooled_connections(pg_store)
    with pytest.raises(DatabaseUnavailable):
        pg_store.enqueue([JOB])
    (job_id,) = pg_store.enqueue([JOB])
    assert pg_store.get(job_id).status.value == "PENDING"
    assert len(pg_store.list(limit=10)) == 2  # the failed enqueue stored nothing


def test_enqueue_without_a_server_is_unavailable_not_a_driver_error():
    url = "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"  # port 9 (discard): refused
    engine = create_engine(url, **engine_options(url))
    configure_engine(engine)
    try:
        with pytest.raises(DatabaseUnavailable):
            JobStore(engine).enqueue([JOB])
    finally:
        engine.dispose()


def test_a_driver_statement_refuses_a_bound_value_that_needs_type_processing():
    # The driver would get the Enum itself, not the text SQLAlchemy's Enum type would write.
    statement = update(Job.__table__).values(status=JobStatus.DONE)
    with pytest.raises(TypeError, match="status"):
        DriverStatement.from_statement(statement, sqlite.dialect())


def test_a_sqlite_file_another_process_holds_is_switched_to_wal_once_it_is_free(tmp_path):
    # What processes starting together on a new database meet: one holds the file's write lock
    # while it is still in rollback journal mode (as a process does while switching it to WAL),
    # another connects and asks for WAL, which SQLite refuses at once, without busy_timeout.
    path = tmp_path / "jobsvc.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE existing (id INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # the write lock until COMMIT
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    url = f"sqlite:///{path}"
    engine = create_engine(url, **engine_options(url))
    configure_engine(engine)
    release.start()
    try:
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        release.join()
        holder.close()
        engine.dispose()
    assert mode == "wal"
