"""PostgreSQL sessions as operators run them: a statement the server cancels is a 503 the client
may retry, every session carries its timeouts and keepalives and says which process kind it is,
and the migration lock is released with its transaction (safe behind a transaction pooler)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jobsvc import create_app
from jobsvc.extensions import db
from jobsvc.services import build_services
from jobsvc.store import PollingWaker, open_waker
from jobsvc.store.dialects import dialect_for
from tests.support.settings import FAST_SETTINGS


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_url(backend: str, app) -> str:
    if backend != "postgresql":
        pytest.skip("PostgreSQL session settings")
    return app.config["SQLALCHEMY_DATABASE_URI"]


def _app(url: str, **settings):
    return create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, **FAST_SETTINGS, **settings}
    )


def _config(url: str, **settings) -> dict:
    app = _app(url, **settings)
    with app.app_context():
        db.engine.dispose()
    return dict(app.config)


def test_a_statement_timeout_in_the_api_is_503_with_retry_after(pg_url):
    app = _app(pg_url, JOBSVC_PG_STATEMENT_TIMEOUT_SECONDS=0.3)
    client = app.test_client()
    assert client.post("/jobs", json={"type": "test.echo", "payload": {}}).status_code == 201
    with psycopg.connect(_plain(pg_url)) as locker:
        # Another session holds the table: the API's read waits, until the server cancels it.
        locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        for response in (client.get("/jobs"), client.post("/jobs", json={"type": "test.echo"})):
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.mimetype == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
    assert client.get("/jobs").status_code == 200  # the lock gone, the same pool serves again
    with app.app_context():
        db.engine.dispose()


def test_every_session_carries_its_limits_keepalives_and_process_kind(pg_url):
    app = _app(
        pg_url,
        JOBSVC_PG_STATEMENT_TIMEOUT_SECONDS=12.5,
        JOBSVC_PG_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS=0,
        JOBSVC_PG_KEEPALIVES_IDLE_SECONDS=7,
    )
    with app.app_context(), db.engine.connect() as connection:
        shown = connection.execute(
            text(
                "SELECT current_setting('statement_timeout'), "
                "current_setting('idle_in_transaction_session_timeout'), "
                "current_setting('application_name')"
            )
        ).one()
        dsn = connection.connection.driver_connection.info.dsn
    assert tuple(shown) == ("12500ms", "0", "jobsvc-api")
    for part in ("keepalives=1", "keepalives_idle=7", "tcp_user_timeout=22000"):
        assert part in dsn, dsn
    with app.app_context():
        db.engine.dispose()

    services = build_services(dict(app.config))  # the worker's: its own small pool
    try:
        with services.engine.connect() as connection:
            name = connection.execute(text("SELECT current_setting('application_name')"))
            assert name.scalar_one() == "jobsvc-worker"
        assert services.engine.pool.size() == 2 and services.engine.pool._max_overflow == 0
        waker = services.open_waker()
        try:
            waker.wait(0.01)  # connects and LISTENs
            with services.engine.connect() as connection:
                listeners = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'jobsvc-listen' AND datname = current_database()"
                    )
                ).scalar_one()
            assert listeners == 1
        finally:
            waker.close()
    finally:
        services.engine.dispose()


def test_behind_a_transaction_pooler_workers_poll_unless_told_where_to_listen(pg_url):
    config = _config(pg_url, JOBSVC_PG_TRANSACTION_POOLER=True)
    services = build_services(config)
    try:
        assert isinstance(services.open_waker(), PollingWaker)
        around = build_services({**config, "JOBSVC_LISTEN_DATABASE_URL": pg_url})
        waker = around.open_waker()
        try:
            assert waker.notices_cancels and not isinstance(waker, PollingWaker)
        finally:
            waker.close()
            around.engine.dispose()
        with services.engine.connect() as connection:  # no options startup parameter sent
            shown = connection.execute(text("SELECT current_setting('statement_timeout')"))
            assert shown.scalar_one() == "0"
    finally:
        services.engine.dispose()
    assert open_waker(services.engine).notices_cancels  # no pooler said: LISTEN as before


def test_the_migration_lock_is_released_with_its_transaction(pg_url, engine):
    lock = dialect_for(engine).migration_lock
    entered = threading.Event()

    def other() -> None:
        with lock():
            entered.set()

    with lock():
        waiting = threading.Thread(target=other)
        waiting.start()
        assert not entered.wait(0.3)  # held: the other process waits
    waiting.join(timeout=10)
    assert entered.is_set()
    with engine.connect() as connection:
        held = connection.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar_one()
    assert held == 0
