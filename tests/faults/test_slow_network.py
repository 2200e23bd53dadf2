"""Scenario: a slow network. The same workers drain the same backlog twice: on loopback, then
with 20 ms added each way between them and PostgreSQL (a user-space delaying proxy,
``tests/support/delay_proxy.py``: no netem here). Printed and recorded: pickup latency (a
job's ``started_at - created_at`` with idle workers woken by LISTEN/NOTIFY), the drain rate,
and their ratio, which claim batching (one round trip claims every free slot) keeps within 3x.
Speed is printed, never asserted; what is asserted is that both drains finish, nothing is
lost or run twice, and the proxy really added the delay.

PostgreSQL only (the shared server; only the workers go through the proxy, the API does not).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.support.ports import free_port
from tests.support.processes import REPO
from tests.support.waiting import wait_until

from .service import FaultService, size

DELAY_SECONDS = 0.020  # each way
WORKERS = 2
# Slots per worker: a claim fills all free slots in one round trip, so a batch outweighs the
# 40 ms it costs (at 200 slots the drain was 3.7-4.8x slower than loopback on a quiet machine,
# at 500 2.4-3.2x). The same for both drains.
CONCURRENCY = "500"
JOBS = size(100, 4000)
PICKUPS = size(3, 30)
SETTLE_TIMEOUT_SECONDS = size(120, 900)
STOP_TIMEOUT_SECONDS = 30


def _start_proxy(upstream_host: str, upstream_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.support.delay_proxy",
        str(port),
        upstream_host,
        str(upstream_port),
        str(DELAY_SECONDS),
    ]
    proxy = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proxy.stdout is not None and proxy.stdout.readline().strip() == b"ready"
    return proxy, port


def _round_trip_seconds(url: str) -> float:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as connection:
        connection.execute("SELECT 1")
        started = time.monotonic()
        connection.execute("SELECT 1")
        return time.monotonic() - started


def _listening(service: FaultService) -> int:
    with service.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'jobsvc-listen' "
                "AND datname = current_database()"
            )
        ).scalar_one()


def _times(service: FaultService, ids: list[int]) -> list[tuple[float, float, float]]:
    with service.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT extract(epoch FROM created_at), extract(epoch FROM started_at), "
                "extract(epoch FROM finished_at) FROM jobs WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
    return [(float(a), float(b), float(c)) for a, b, c in rows]


def _measure(service: FaultService, database_url: str) -> dict[str, float]:
    """Start the workers on ``database_url``; return pickup latency and drain rate; stop them."""
    workers = [
        service.start_worker(
            "--concurrency", CONCURRENCY, DATABASE_URL=database_url, JOBSVC_POLL_SECONDS="1"
        )
        for _ in range(WORKERS)
    ]
    wait_until(lambda: _listening(service) == WORKERS, timeout=60, message="workers not up")
    pickups = []
    for _ in range(PICKUPS):  # one at a time, to idle workers: LISTEN wakes one, it claims
        job_id = service.post({"type": "test.echo", "payload": {}})
        service.wait_settled(SETTLE_TIMEOUT_SECONDS)
        ((created, started, _),) = _times(service, [job_id])
        pickups.append(started - created)
    ids = service.enqueue([{"type": "test.work", "payload": {"seconds": 0}}] * JOBS)
    service.wait_settled(SETTLE_TIMEOUT_SECONDS)
    times = _times(service, ids)
    span = max(t[2] for t in times) - min(t[1] for t in times)
    for worker in workers:
        service.terminate(worker)
    for worker in workers:
        worker.wait(STOP_TIMEOUT_SECONDS)
    return {
        "pickup_p50_ms": round(statistics.median(pickups) * 1000, 1),
        "pickup_max_ms": round(max(pickups) * 1000, 1),
        "jobs_per_second": round(JOBS / span),
    }


def test_claim_batching_keeps_a_slow_network_drain_near_loopback(faulty, backend):
    if backend != "postgresql":
        pytest.skip("a network between workers and the database: PostgreSQL")
    direct = make_url(faulty.engine.url.render_as_string(hide_password=False))
    proxy, port = _start_proxy(direct.host or "127.0.0.1", direct.port or 5432)
    slow_url = direct.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    try:
        faulty.start_api()
        started = time.monotonic()
        loopback = _measure(faulty, direct.render_as_string(hide_password=False))
        slow = _measure(faulty, slow_url)
        ratio = round(loopback["jobs_per_second"] / max(slow["jobs_per_second"], 1), 2)
        faulty.check(
            "slow-network",
            workers=WORKERS,
            delay_ms_each_way=round(DELAY_SECONDS * 1000),
            **{f"loopback_{k}": v for k, v in loopback.items()},
            **{f"slow_{k}": v for k, v in slow.items()},
            drain_slowdown=ratio,
            seconds=round(time.monotonic() - started, 1),
        )
        assert _round_trip_seconds(slow_url) >= 2 * DELAY_SECONDS  # the delay really applied
    finally:
        proxy.kill()
        proxy.wait()
        if proxy.stdout is not None:
            proxy.stdout.close()
        if proxy.stdout is not None:
            proxy.stdout.close()
