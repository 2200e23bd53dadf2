"""Scenario 3: the database goes away. PostgreSQL is restarted twice during a drain (a private
cluster, not the shared server); SQLite is hammered by several processes and survives a kill -9
during writes."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from .private_postgres import PrivatePostgres, find_bin
from .scenario import wait_for
from .service import FaultService, record, size

RESTARTS = 2
DOWN_SECONDS = size(2.0, 4.0)
UP_SECONDS = size(2.0, 6.0)
CLIENTS = size(2, 4)
LEASE = {"JOBSVC_LEASE_SECONDS": "2", "JOBSVC_HEARTBEAT_SECONDS": "0.4"}
HAMMER_SECONDS = size(6.0, 30.0)
HAMMER_APIS = 3
HAMMER_WORKERS = 3
REQUEST_TIMEOUT_SECONDS = 30


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = find_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("the database-restart scenario needs PostgreSQL server binaries under CI")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    server = PrivatePostgres(bin_dir)
    server.start()
    yield server
    server.destroy()


class Client:
    """Threads that POST jobs round-robin to the APIs and tally every answer."""

    def __init__(self, service: FaultService, base_urls: list[str], threads: int) -> None:
        self.service = service
        self.base_urls = base_urls
        self.codes: Counter[int] = Counter()
        self.retry_after_missing = 0
        self.connection_errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self, n: int) -> None:
        rng = random.Random(n)
        while not self._stop.is_set():
            url = rng.choice(self.base_urls)
            jobs = [{"type": "test.work", "payload": {"seconds": 0.01}}] * rng.choice([1, 1, 5])
            try:
                response = requests.post(
                    f"{url}/jobs/batch", json={"jobs": jobs}, timeout=REQUEST_TIMEOUT_SECONDS
                )
            except requests.RequestException:  # the API process was killed (on purpose)
                with self._lock:
                    self.connection_errors += 1
                time.sleep(0.05)
                continue
            self._tally(response)

    def _tally(self, response: requests.Response) -> None:
        with self._lock:
            self.codes[response.status_code] += 1
            if response.status_code == 201:
                self.service.accepted += [job["id"] for job in response.json()["jobs"]]
            elif response.status_code == 503:
                self.retry_after_missing += "Retry-After" not in response.headers
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_postgres_restarts_lose_nothing_and_the_api_says_503(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    service = FaultService(private_postgres.url, tmp_path, "postgresql-private")
    try:
        base_url = service.start_api()
        # Each worker also serves a queue of its own, to show afterwards that each one of them
        # reconnected and works.
        own_queues = ["after-a", "after-b"]
        workers = [
            service.start_worker("--concurrency", "4", "--queues", f"default,{queue}", **LEASE)
            for queue in own_queues
        ]
        wait_for(lambda: all(" started: " in service.log_of[w.pid].read_text() for w in workers))
        client = Client(service, [base_url], CLIENTS)
        for _ in range(RESTARTS):
            time.sleep(UP_SECONDS)
            private_postgres.stop()
            time.sleep(DOWN_SECONDS)
            private_postgres.start()
        time.sleep(UP_SECONDS)
        client.stop()
        probes = {
            queue: service.post({"type": "test.work", "queue": queue}) for queue in own_queues
        }
        service.wait_settled(120)

        assert set(client.codes) <= {201, 503}, client.codes  # never a 500
        assert client.codes[503] > 0  # the API did see the outage
        assert client.retry_after_missing == 0
        assert client.connection_errors == 0
        assert all(worker.poll() is None for worker in workers)  # they reconnected by themselves
        ran = {e["job_id"]: e["pid"] for e in service.executions() if e["event"] == "start"}
        assert [ran[probes[queue]] for queue in own_queues] == [w.pid for w in workers]
        service.check("database_restart", created=client.codes[201], unavailable=client.codes[503])
    finally:
        service.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_hammered_by_many_processes_never_reports_locked(
    faulty: FaultService, tmp_path: Path
) -> None:
    base_urls = [faulty.start_api() for _ in range(HAMMER_APIS)]
    workers = [faulty.start_worker("--concurrency", "4", **LEASE) for _ in range(HAMMER_WORKERS)]
    faulty.supervise()
    client = Client(faulty, base_urls, CLIENTS + 2)
    time.sleep(HAMMER_SECONDS / 2)
    faulty.kill(random.Random(3).choice(workers))  # mid-write, most likely
    time.sleep(HAMMER_SECONDS / 2)
    client.stop()
    faulty.wait_settled(120)

    assert set(client.codes) == {201}, client.codes  # no 5xx at all, no 503 either
    assert client.connection_errors == 0
    locked = [path.name for path in faulty.logs("") if "database is locked" in path.read_text()]
    assert not locked
    counters = faulty.check(
        "sqlite_hammer", created=client.codes[201], worker_deaths=len(faulty.faults.died)
    )
    assert counters.accepted > 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_file_is_intact_after_kill_during_writes(
    faulty: FaultService, database_url: str
) -> None:
    base_url = faulty.start_api()
    worker = faulty.start_worker("--concurrency", "4", **LEASE)
    client = Client(faulty, [base_url], CLIENTS)
    wait_for(lambda: len(faulty.executions()) > 50)
    faulty.kill(worker)
    api = faulty.children[0]
    faulty.kill(api)  # the API too, in the middle of inserts
    client.stop()
    faulty.stop_all()
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert connection.execute(text("SELECT count(*) FROM jobs")).scalar() > 0
    finally:
        engine.dispose()
    print(f"[faults] sqlite_kill_during_writes: integrity_check=ok created={client.codes[201]}")
    record("sqlite_kill_during_writes[sqlite]", integrity_check="ok", created=client.codes[201])
