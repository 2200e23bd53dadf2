"""Fixtures: a fresh app and database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from jobsvc import create_app
from jobsvc.extensions import db
from jobsvc.retry import RetryPolicy
from jobsvc.store import JobStore, LeaseStore
from tests.support.databases import PostgresDatabases, SqliteTemplate
from tests.support.settings import BACKENDS, FAST_SETTINGS, require_admin_url

# A conftest's pytestmark marks nothing, so directories mark their tests here.
DIRECTORY_MARKERS = {"e2e": pytest.mark.e2e, "faults": pytest.mark.faults}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of tests/e2e ``e2e`` and those of tests/faults ``faults``."""
    tests_dir = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(tests_dir) if tests_dir in item.path.parents else None
        if relative is not None and relative.parts[0] in DIRECTORY_MARKERS:
            item.add_marker(DIRECTORY_MARKERS[relative.parts[0]])


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """This session's PostgreSQL databases; every one is dropped at the end."""
    databases = PostgresDatabases(require_admin_url())
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    """A SQLite file migrated once per session, copied for each test."""
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


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
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create()
    yield databases.url(name)
    databases.drop_later(name)


@pytest.fixture
def migrated_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """Return the URL of a database of this test's own whose schema is current."""
    if backend == "sqlite":
        template: SqliteTemplate = request.getfixturevalue("sqlite_template")
        yield template.clone(tmp_path)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.clone_migrated()
    yield databases.url(name)
    databases.drop_later(name)


@pytest.fixture
def app(migrated_database_url: str) -> Iterator[Flask]:
    """Return an app on a clean database with the current schema (it finds nothing to migrate)."""
    application = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": migrated_database_url,
            **FAST_SETTINGS,
        }
    )
    yield application
    application.extensions["jobsvc"].ended_jobs.close()
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
    return LeaseStore(engine, RetryPolicy(0.05, 1.0, random.Random(7)))
