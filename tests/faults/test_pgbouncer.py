"""Scenario: the API and the workers reach PostgreSQL through PgBouncer in transaction pooling
mode (a few server connections shared by every client's transactions). Jobs enqueued over HTTP
drain, nothing is lost or run twice, and a cancel still stops a running handler: with the
workers' LISTEN connection around PgBouncer (JOBSVC_LISTEN_DATABASE_URL), or polling.

PostgreSQL only. Needs the pgbouncer binary (Debian's package; ``.ci/run`` installs it).
"""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.support.waiting import wait_until

from .pgbouncer import SERVER_POOL_SIZE, PgBouncer
from .service import FaultService, size

WORKERS = 2
CONCURRENCY = "4"
JOBS = size(50, 5000)
WORK_SECONDS = 0.005
SETTLE_TIMEOUT_SECONDS = size(120, 600)
HANDLERS = "tests.handlers,tests.cancel_handlers"
CANCEL_STOP_SECONDS = 5.0  # a NOTIFY around PgBouncer, or the half-second check when polling


def _records(service: FaultService, job_id: int, event: str) -> list[dict]:
    return [e for e in service.executions() if e.get("job_id") == job_id and e["event"] == event]


@pytest.mark.parametrize("wake", ["listen-around", "poll"])
def test_jobs_drain_and_cancel_through_pgbouncer(backend, database_url, tmp_path, wake):
    if backend != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections")
    direct = make_url(database_url)
    bouncer = PgBouncer(direct.host or "127.0.0.1", direct.port or 5432, direct.username or "")
    service = FaultService(database_url, tmp_path, backend)  # its checker reads the DB directly
    try:
        bouncer.start()
        service.env.update(
            DATABASE_URL=bouncer.url(direct.database or ""),
            JOBSVC_PG_TRANSACTION_POOLER="on",
            JOBSVC_HANDLERS=HANDLERS,
            JOBSVC_POLL_SECONDS="0.2",
        )
        if wake == "listen-around":
            service.env["JOBSVC_LISTEN_DATABASE_URL"] = database_url
        service.start_api(serve=True)  # it migrates the empty database through PgBouncer
        workers = [service.start_worker("--concurrency", CONCURRENCY) for _ in range(WORKERS)]
        wait_until(
            lambda: all('"event": "started"' in service.log_of[w.pid].read_text() for w in workers),
            timeout=SETTLE_TIMEOUT_SECONDS,
            message="the workers did not start",
        )
        started = time.monotonic()  # the drain, not the workers' start-up
        service.enqueue(
            [{"type": "test.work", "payload": {"seconds": WORK_SECONDS}} for _ in range(JOBS)]
        )
        service.wait_settled(SETTLE_TIMEOUT_SECONDS)
        drained = time.monotonic() - started

        job_id = service.post(
            {"type": "cancel.cooperative", "payload": {"seconds": 60}, "max_attempts": 1}
        )
        wait_until(lambda: _records(service, job_id, "start"), message="the handler did not start")
        response = requests.post(f"{service.base_url}/jobs/{job_id}/cancel", timeout=10)
        asked = time.monotonic()
        assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
        wait_until(
            lambda: _records(service, job_id, "end"),
            timeout=CANCEL_STOP_SECONDS,
            message="the cancelled handler did not stop",
        )
        stopped = time.monotonic() - asked
        (end,) = _records(service, job_id, "end")
        assert end["how"] == "Cancelled"
        assert bouncer.server_connections() <= SERVER_POOL_SIZE
        service.wait_settled(SETTLE_TIMEOUT_SECONDS)
        service.check(
            f"pgbouncer-{wake}",
            jobs_per_second=round(JOBS / drained),
            cancel_stop_seconds=round(stopped, 2),
        )
        for log in service.logs():
            assert "prepared statement" not in log.read_text(), log
        assert "prepared statement" not in service.log("api")
    finally:
        service.close()
        bouncer.close()
