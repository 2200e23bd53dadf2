"""Fresh databases for the benchmark: a temporary SQLite file, or a PostgreSQL database the
bench creates and drops (never the tables of the database it was pointed at)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from jobsvc import create_app
from jobsvc.extensions import db

HANDLER_MODULES = ("bench.handlers", "bench.async_handlers")


@dataclass
class BenchDatabase:
    """One migrated database and an engine on it."""

    backend: str
    url: str
    engine: Engine

    def reset(self) -> None:
        """Remove every job, so the next workload starts from an empty table."""
        with self.engine.begin() as connection:
            if self.backend == "postgresql":
                connection.execute(text("TRUNCATE jobs RESTART IDENTITY CASCADE"))
            else:
                connection.execute(text("DELETE FROM job_dependencies"))
                connection.execute(text("DELETE FROM jobs"))
        if self.backend == "postgresql":
            with self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.execute(text("VACUUM ANALYZE jobs"))


def plain_url(url: str) -> str:
    """Return ``url`` as libpq understands it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def bench_database(backend: str, admin_url: str | None, tmp_dir: Path) -> Iterator[BenchDatabase]:
    """Yield a fresh, migrated database of ``backend``; drop it afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
        yield from _migrated(backend, url)
        return
    if admin_url is None:
        raise ValueError("PostgreSQL needs --postgres-url (or JOBSVC_TEST_POSTGRES_URL)")
    name = f"jobsvc_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain_url(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield from _migrated(backend, url.render_as_string(hide_password=False))
    finally:
        with psycopg.connect(plain_url(admin_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrated(backend: str, url: str) -> Iterator[BenchDatabase]:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "JOBSVC_HANDLERS": HANDLER_MODULES,
            "JOBSVC_LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        engine = db.engine
    try:
        yield BenchDatabase(backend, url, engine)
    finally:
        engine.dispose()
