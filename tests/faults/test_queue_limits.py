"""Queue limits held by real workers competing for one queue: concurrency and rate.

Small by default; ``JOBSVC_FAULTS_SCALE=full`` runs the sizes of issue 12 (four workers at
``--concurrency 8``, 200 jobs of 50 ms on a queue limited to 2; a rate limit over 10 s).
"""

from __future__ import annotations

import math
from datetime import datetime

import requests

from tests.support.settings import slow_e2e_backends

from .service import size

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

WORKERS = 4
WORKER_CONCURRENCY = "8"
QUEUE_CONCURRENCY = 2
RATE_JOBS = 5
RATE_PER_SECONDS = 1.0
CHECK_WINDOW_SECONDS = 2.0
# SQLite reads its clock per statement: a start is stamped a moment after the claim read the
# window's clock. PostgreSQL's now() is one per transaction: there it is 0.
CLOCK_SLACK_SECONDS = 0.05


def _configure(service, name: str, settings: dict) -> None:
    response = requests.put(f"{service.base_url}/queues/{name}", json=settings, timeout=10)
    assert response.status_code == 200, response.text


def _enqueue(service, jobs: list[dict]) -> list[int]:
    response = requests.post(f"{service.base_url}/jobs/batch", json={"jobs": jobs}, timeout=30)
    assert response.status_code == 201, response.text
    return [job["id"] for job in response.json()["jobs"]]


def _start_workers(service) -> None:
    for _ in range(WORKERS):
        service.start_worker("--concurrency", WORKER_CONCURRENCY)


def _most_at_once(events: list[dict], job_ids: set[int]) -> int:
    # The handlers append start/end lines to one file (O_APPEND): its order is the order of
    # the writes, and an attempt's end is written before its outcome, hence before any claim
    # its outcome made room for.
    running = most = 0
    for event in events:
        if event["job_id"] in job_ids:
            running += 1 if event["event"] == "start" else -1
            most = max(most, running)
    return most


def test_four_workers_never_run_more_of_a_queue_than_its_concurrency(faulty):
    jobs, seconds = size((40, 0.02), (200, 0.05))
    faulty.start_api()
    _configure(faulty, "limited", {"concurrency": QUEUE_CONCURRENCY})
    ids = _enqueue(
        faulty,
        [{"type": "test.sleep", "payload": {"seconds": seconds}, "queue": "limited"}] * jobs,
    )
    _start_workers(faulty)
    finished = faulty.wait_terminal(ids, timeout=120)
    assert {job["status"] for job in finished} == {"DONE"}  # the queue drains
    assert _most_at_once(faulty.executions(), set(ids)) == QUEUE_CONCURRENCY


def test_four_workers_start_no_more_than_the_rate_limit_allows(faulty):
    jobs = size(3 * RATE_JOBS, 10 * RATE_JOBS)
    faulty.start_api()
    rate = {"jobs": RATE_JOBS, "per_seconds": RATE_PER_SECONDS}
    _configure(faulty, "rated", {"rate_limit": rate})
    ids = _enqueue(faulty, [{"type": "test.echo", "payload": {}, "queue": "rated"}] * jobs)
    _start_workers(faulty)
    finished = faulty.wait_terminal(ids, timeout=120)
    assert {job["status"] for job in finished} == {"DONE"}
    # started_at is the database's clock in the claim, the clock the window is kept on.
    starts = sorted(datetime.fromisoformat(job["started_at"]).timestamp() for job in finished)
    windows = math.ceil(jobs / RATE_JOBS)
    assert starts[-1] - starts[0] >= (windows - 1) * RATE_PER_SECONDS - CLOCK_SLACK_SECONDS
    # Fixed windows: any stretch of CHECK_WINDOW_SECONDS meets at most W/per + 1 of them.
    most = RATE_JOBS * (CHECK_WINDOW_SECONDS / RATE_PER_SECONDS + 1)
    for index, first in enumerate(starts):
        inside = [
            s for s in starts[index:] if s < first + CHECK_WINDOW_SECONDS - CLOCK_SLACK_SECONDS
        ]
        assert len(inside) <= most
