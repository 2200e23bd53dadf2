"""A worker started while the database is down waits for it instead of exiting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

from .private_postgres import PrivatePostgres, find_bin
from .service import FaultService

UNAVAILABLE = "database unavailable at start-up"


@pytest.fixture
def stopped_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    server = PrivatePostgres(bin_dir)
    yield server
    server.destroy()


def test_worker_started_before_the_database_serves_jobs_once_it_is_up(
    stopped_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    service = FaultService(stopped_postgres.url, tmp_path, "postgresql-private")
    try:
        worker = service.start_worker()
        log = service.log_of[worker.pid]
        # Waits on the worker saying it found no database (a fixed sleep was too short under load).
        wait_until(lambda: UNAVAILABLE in log.read_text(), timeout=60, message="no start-up wait")
        assert worker.poll() is None, log.read_text()[-2000:]
        stopped_postgres.start()
        service.start_api()
        (job,) = service.wait_terminal([service.post({"type": "test.echo"})], timeout=60)
        assert job["status"] == "DONE"
    finally:
        service.close()
