"""Scenario: the connection budget. Workers drain a backlog enqueued over HTTP on a private
PostgreSQL cluster started with ``max_connections=100``, while a sampler counts every session in
``pg_stat_activity`` by ``application_name``: a worker holds at most its pool of two plus its
LISTEN connection, the API at most one per request thread, and 30 workers plus the API fit.

Small size: 2 workers (the per-worker bound is what is asserted, and 30 x it plus the API must
fit); full size (``JOBSVC_FAULTS_SCALE=full``): 30 real workers. PostgreSQL only.
"""

from __future__ import annotations

import math
import threading
from collections import Counter

import psycopg
import pytest
import requests

from tests.support.processes import Processes
from tests.support.waiting import poll_until, wait_until

from .private_postgres import PrivatePostgres, find_bin
from .service import record, size

MAX_CONNECTIONS = 100
WORKERS = size(2, 30)
JOBS = size(100, 3000)
BATCH = 500
API_THREADS = 8  # python -m jobsvc.serve's default
PER_WORKER = 3  # a pool of two, and the listener
SAMPLE_EVERY_SECONDS = 0.02
SETTLE_TIMEOUT_SECONDS = size(120, 600)
KINDS = ("jobsvc-api", "jobsvc-worker", "jobsvc-listen")
COUNT_SESSIONS = (
    "SELECT application_name, count(*) FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
)


class Sampler:
    """Counts sessions by application_name until stopped; keeps each kind's highest count."""

    def __init__(self, url: str) -> None:
        self._connection = psycopg.connect(url, autocommit=True, application_name="sampler")
        self.highest: Counter[str] = Counter()
        self.highest_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> Counter[str]:
        return Counter(dict(self._connection.execute(COUNT_SESSIONS).fetchall()))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_SECONDS):
            counts = self.now()
            for kind, n in counts.items():
                self.highest[kind] = max(self.highest[kind], n)
            self.highest_total = max(self.highest_total, sum(counts.values()))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._connection.close()


def _pending(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        (n,) = connection.execute(
            "SELECT count(*) FROM jobs WHERE status NOT IN ('DONE', 'FAILED', 'CANCELLED')"
        ).fetchone()
        return n


def test_workers_and_the_api_fit_under_max_connections_100(tmp_path):
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    server = PrivatePostgres(bin_dir, max_connections=MAX_CONNECTIONS)
    processes = Processes(server.url, tmp_path)
    plain = server.url.replace("+psycopg", "")
    try:
        server.start()
        processes.env["JOBSVC_POLL_SECONDS"] = "0.5"  # 30 idle workers on two cores
        base = processes.start_api(serve=True)
        for _ in range(WORKERS):
            processes.start_worker("--concurrency", "4")
        with Sampler(plain) as sampler:
            wait_until(
                lambda: sampler.now()["jobsvc-listen"] == WORKERS,
                timeout=SETTLE_TIMEOUT_SECONDS,
                message="not every worker is listening",
            )
            for start in range(0, JOBS, BATCH):
                jobs = [
                    {"type": "test.work", "payload": {"seconds": 0.002}}
                    for _ in range(min(BATCH, JOBS - start))
                ]
                response = requests.post(f"{base}/jobs/batch", json={"jobs": jobs}, timeout=60)
                assert response.status_code == 201, response.text
            poll_until(lambda: _pending(plain) == 0, timeout=SETTLE_TIMEOUT_SECONDS, interval=0.1)
            assert _pending(plain) == 0
            idle = sampler.now()  # every job done: what the processes keep open at rest
        per_worker = (sampler.highest["jobsvc-worker"] + sampler.highest["jobsvc-listen"]) / WORKERS
        figures = {
            "workers": WORKERS,
            "jobs": JOBS,
            **{f"highest_{kind}": sampler.highest[kind] for kind in KINDS},
            "highest_total": sampler.highest_total,
            "per_worker": round(per_worker, 2),
            "at_rest": {kind: idle[kind] for kind in KINDS},
        }
        print("[faults] connection-budget[postgresql]:", figures)
        record("connection-budget[postgresql]", **figures)
        assert sampler.highest["jobsvc-listen"] <= WORKERS
        assert sampler.highest["jobsvc-worker"] <= 2 * WORKERS
        assert sampler.highest["jobsvc-api"] <= API_THREADS
        assert sampler.highest_total <= MAX_CONNECTIONS
        # 30 workers at the per-worker bound, and the API with every thread busy, still fit.
        assert 30 * math.ceil(per_worker) + API_THREADS <= MAX_CONNECTIONS - 1  # the sampler
        for name in ["api", *(f"worker{n}" for n in range(1, WORKERS + 1))]:
            assert "too many clients" not in processes.log(name), name
    finally:
        processes.stop_all()
        server.destroy()
