"""Migrations: applied by `flask db upgrade` or at start, safely from many processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from sqlalchemy import create_engine, inspect

from jobsvc.config import normalize_database_url
from jobsvc.schema import pending_migrations

REPO = Path(__file__).resolve().parent.parent


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO), **extra}


def _engine(database_url: str):
    return create_engine(normalize_database_url(database_url))


def test_flask_db_upgrade_creates_the_schema(database_url):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "jobsvc", "db", "upgrade"],
        cwd=REPO,
        env=_env(database_url, JOBSVC_AUTO_MIGRATE="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    engine = _engine(database_url)
    try:
        assert "jobs" in inspect(engine).get_table_names()
        assert not pending_migrations(engine)
    finally:
        engine.dispose()


def test_processes_starting_together_migrate_once(database_url):
    code = "from jobsvc import create_app; create_app()"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=_env(database_url),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0, 0], outputs
    assert sum("Running upgrade" in output for output in outputs) == 1
    engine = _engine(database_url)
    try:
        assert not pending_migrations(engine)
    finally:
        engine.dispose()


def test_worker_refuses_a_schema_that_is_behind(database_url):
    result = subprocess.run(
        [sys.executable, "-m", "worker", "--burst"],
        cwd=REPO,
        env=_env(database_url, JOBSVC_AUTO_MIGRATE="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "flask --app jobsvc db upgrade" in result.stderr


def test_the_built_package_carries_its_migrations(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("jobsvc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "jobsvc/migrations/env.py",
        "jobsvc/migrations/script.py.mako",
        "jobsvc/migrations/versions/0001_create_jobs.py",
        "worker/__main__.py",
    } <= names


def test_a_worker_migrates_and_runs_without_flask(database_url):
    code = (
        "import sys, worker.cli; code = worker.cli.main(['--burst']); "
        "print(code, 'flask' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=_env(database_url, JOBSVC_HANDLERS="tests.handlers"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "False"]
    assert "Running upgrade" in result.stderr
    engine = _engine(database_url)
    try:
        assert not pending_migrations(engine)
    finally:
        engine.dispose()
