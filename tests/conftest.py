"""Fixtures: a fresh app and database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from jobsvc import create_app
from jobsvc.extensions import db
from jobsvc.retry import RetryPolicy
from jobsvc.store import JobStore, LeaseStore

POSTGRES_ENV = "JOBSVC_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]
FAST_SETTINGS = {
    "JOBSVC_LEASE_SECONDS": 2.0,
    "JOBSVC_HEARTBEAT_SECONDS": 0.5,
    "JOBSVC_POLL_SECONDS": 0.05,
    "JOBSVC_RETRY_BASE_SECONDS": 0.05,
    "JOBSVC_RETRY_MAX_SECONDS": 1.0,
    "JOBSVC_SHUTDOWN_GRACE_SECONDS": 5.0,
    "JOBSVC_HANDLERS": ("tests.handlers",),
}


# A conftest's pytestmark marks nothing, so directories mark their tests here.
DIRECTORY_MARKERS = {"e2e": pytest.mark.e2e, "faults": pytest.mark.faults}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of tests/e2e ``e2e`` and those of tests/faults ``faults``."""
    tests_dir = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(tests_dir) if tests_dir in item.path.parents else None
        if relative is not None and relative.parts[0] in DIRECTORY_MARKERS:
            item.add_marker(DIRECTORY_MARKERS[relative.parts[0]])


def _admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_ENV} must be set under CI: PostgreSQL tests are required there")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Create a PostgreSQL database for this test session; drop it afterwards."""
    admin = _admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    name = f"jobsvc_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty database (with the schema once an app migrates it)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobsvc.sqlite3'}"
        return
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    yield url


def _reset_postgres(url: str) -> None:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Return an app on a clean, migrated database."""
    application = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        **FAST_SETTINGS,
    })
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def engine(app: Flask):
    with app.app_context():
        return db.engine


@pytest.fixture
def job_store(engine) -> JobStore:
    return JobStore(engine)


@pytest.fixture
def lease_store(engine) -> LeaseStore:
    return LeaseStore(engine, RetryPolicy(0.05, 1.0, random.Random(7)))  # noqa: S311
