"""Priority aging and retention with real workers: a low-priority job starts under a flood of
higher ones within the bound its setting implies; finished jobs past retention disappear."""

from __future__ import annotations

import threading
from datetime import datetime

import requests

from tests.support.processes import Processes
from tests.support.settings import slow_e2e_backends
from tests.support.waiting import wait_until

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

AGING_SECONDS = 0.25
FLOOD_PRIORITY = 10
FLOOD_BACKLOG = 40  # ready flood jobs kept waiting at all times
WORK_SECONDS = 0.05  # each flood job's run time, one at a time
# Ten steps bring the waiting job level with the flood; it is then ahead of every flood job
# enqueued after it, so the backlog at that moment is what it still waits for.
BOUND_SECONDS = FLOOD_PRIORITY * AGING_SECONDS + FLOOD_BACKLOG * WORK_SECONDS + 5.0


def _flood(service: Processes, stop: threading.Event) -> None:
    url = f"{service.base_url}/jobs"
    job = {"type": "test.work", "payload": {"seconds": WORK_SECONDS}, "priority": FLOOD_PRIORITY}
    while not stop.is_set():
        pending = requests.get(
            url, params={"status": "PENDING", "queue": "flood", "limit": 500}, timeout=10
        ).json()["jobs"]
        missing = FLOOD_BACKLOG - len(pending)
        if missing > 0:
            batch = {"jobs": [{**job, "queue": "flood"}] * missing}
            requests.post(f"{url}/batch", json=batch, timeout=10).raise_for_status()
        stop.wait(0.05)


def test_a_low_priority_job_starts_under_a_flood_within_the_aging_bound(service: Processes):
    service.start_api()
    stop = threading.Event()
    flood = threading.Thread(target=_flood, args=(service, stop), daemon=True)
    flood.start()
    try:
        service.start_worker("--concurrency", "1", JOBSVC_PRIORITY_AGING_SECONDS=str(AGING_SECONDS))
        wait_until(lambda: any(e["event"] == "start" for e in service.executions()), timeout=30)
        low = service.post({"type": "test.echo", "queue": "flood", "priority": 0})
        job = wait_until(
            lambda: (found := service.get(low))["status"] == "DONE" and found,
            timeout=BOUND_SECONDS + 30,
        )
    finally:
        stop.set()
        flood.join(10)
    waited = datetime.fromisoformat(job["started_at"]) - datetime.fromisoformat(job["created_at"])
    print(f"the priority-0 job waited {waited.total_seconds():.2f}s (bound {BOUND_SECONDS}s)")
    assert waited.total_seconds() <= BOUND_SECONDS
    assert job["original_priority"] == 0
    assert job["priority"] >= FLOOD_PRIORITY  # aging, not a gap in the flood, let it start


def test_finished_jobs_past_retention_are_deleted_by_the_workers(service: Processes):
    service.start_api()
    service.start_worker(JOBSVC_RETAIN_DONE_SECONDS="1", JOBSVC_RETAIN_FAILED_SECONDS="3600")
    done = service.post({"type": "test.echo"})
    failed = service.post({"type": "test.permanent"})
    service.wait_terminal([done, failed])
    url = f"{service.base_url}/jobs"
    wait_until(lambda: requests.get(f"{url}/{done}", timeout=10).status_code == 404, timeout=90)
    assert service.get(failed)["status"] == "FAILED"  # its retention is an hour


def test_a_worker_with_a_bad_schedule_refuses_to_start_naming_it(service: Processes):
    worker = service.start_worker("--handlers", "tests.bad_schedule_handlers", "--burst")
    assert worker.wait(60) == 2
    log = service.log("worker0")
    assert "schedule 'test.bad_schedule': cron='61 * * * *' is refused" in log, log
