"""Test databases: empty ones, and clones of one template migrated once per test session.

Migrating costs most of a small test's time, so a session migrates a template once (with
``create_app`` and auto-migrate, as the service does) and each test gets a copy: on PostgreSQL
``CREATE DATABASE ... TEMPLATE``, on SQLite a copy of the file. On PostgreSQL the next clone
is made, and the last one dropped, in the background while a test runs.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from jobsvc import create_app
from jobsvc.extensions import db

from .settings import FAST_SETTINGS
from .waiting import wait_until

TEMPLATE_RELEASE_SECONDS = 10.0


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the current schema, and leave no connection open."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, **FAST_SETTINGS})
    with app.app_context():
        db.engine.dispose()


class SqliteTemplate:
    """One migrated SQLite file; each test gets its own copy."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.sqlite3"
        migrate(f"sqlite:///{self.path}")

    def clone(self, directory: Path) -> str:
        """Copy the template into ``directory``; return the copy's URL."""
        target = directory / "jobsvc.sqlite3"
        shutil.copyfile(self.path, target)  # disposed engines leave no -wal file to copy
        return f"sqlite:///{target}"


class PostgresDatabases:
    """A test session's PostgreSQL databases, named uniquely so parallel sessions never meet."""

    def __init__(self, admin_url: str) -> None:
        self.admin = (
            make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self.prefix = f"jobsvc_test_{uuid.uuid4().hex[:10]}"
        self._numbers = itertools.count(1)
        self._template: str | None = None
        self._alive: set[str] = set()
        # One thread, so the server sees one CREATE or DROP of ours at a time.
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._next_clone: Future[str] | None = None

    def url(self, name: str) -> str:
        """Return the SQLAlchemy URL of database ``name``."""
        return (
            make_url(self.admin)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )

    def create(self, template: str = "template0") -> str:
        """Create a database copied from ``template`` (by default an empty one); return its name."""
        name = f"{self.prefix}_{next(self._numbers)}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._alive.add(name)
        return name

    def clone_migrated(self) -> str:
        """Return a new database with the current schema (made ahead); start making the next."""
        template = self._migrated_template()
        clone = self._next_clone or self._background.submit(self.create, template)
        self._next_clone = self._background.submit(self.create, template)
        return clone.result()

    def drop(self, name: str) -> None:
        """Drop database ``name``, ending any session still connected to it."""
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._alive.discard(name)

    def drop_later(self, name: str) -> None:
        """Drop database ``name`` in the background; ``close`` waits for it."""
        self._background.submit(self.drop, name)

    def close(self) -> None:
        """Drop every database this session made (the clone made ahead too)."""
        self._background.shutdown(wait=True)
        for name in sorted(self._alive):
            self.drop(name)

    def _migrated_template(self) -> str:
        if self._template is None:
            name = self.create()
            migrate(self.url(name))
            # CREATE DATABASE ... TEMPLATE refuses a template anyone is connected to.
            wait_until(
                lambda: self._sessions_on(name) == 0,
                timeout=TEMPLATE_RELEASE_SECONDS,
                message=f"sessions still connected to the template {name}",
            )
            self._template = name
        return self._template

    def _sessions_on(self, name: str) -> int:
        with psycopg.connect(self.admin, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def _execute(self, statement: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute(statement)  # the names are ours, not input
