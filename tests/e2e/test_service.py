"""End to end: the real API under waitress and real worker processes on one database."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import datetime

import requests


def _wait_for(predicate, timeout=30.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_seed_example_runs_from_post_to_done(service):
    service.start_api()
    service.start_worker()
    job_id = service.post({"type": "test.echo",
                           "payload": {"user_id": "123", "range": "last_week"}})
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "DONE"
    assert job["attempts"] == 1
    assert job["result"] == {"echo": {"user_id": "123", "range": "last_week"}, "attempt": 1}
    assert job["last_error"] is None


def test_retries_follow_the_backoff_rule_until_done(service):
    service.start_api()
    service.start_worker(JOBSVC_RETRY_BASE_SECONDS="0.3", JOBSVC_RETRY_MAX_SECONDS="10")
    job_id = service.post({"type": "test.flaky", "payload": {"succeed_on": 3},
                           "max_attempts": 3})
    scheduled: dict[int, float] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = service.get(job_id)
        if job["status"] == "PENDING" and job["attempts"] >= 1:
            # The failure wrote updated_at and run_at with one reading of the database clock.
            delay = (datetime.fromisoformat(job["run_at"])
                     - datetime.fromisoformat(job["updated_at"])).total_seconds()
            scheduled[job["attempts"]] = delay
        if job["status"] in ("DONE", "FAILED"):
            break
        time.sleep(0.005)
    assert job["status"] == "DONE" and job["attempts"] == 3
    assert job["result"] == {"attempt": 3}
    for attempt, delay in scheduled.items():
        assert 0 <= delay <= 0.3 * 2 ** (attempt - 1) + 1e-3, (attempt, delay)
    starts = sorted(e["t"] for e in service.executions() if e["event"] == "start")
    assert len(starts) == 3


def test_always_failing_job_ends_failed_after_max_attempts(service):
    service.start_api()
    service.start_worker()
    job_id = service.post({"type": "test.always_fails", "max_attempts": 4})
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "FAILED" and job["attempts"] == 4
    assert job["last_error"] == "ValueError: this handler always fails"
    assert len([e for e in service.executions() if e["event"] == "start"]) == 4


def test_killed_worker_job_is_finished_by_another_after_its_lease_expires(service):
    service.start_api()
    victim = service.start_worker(JOBSVC_LEASE_SECONDS="1.5", JOBSVC_HEARTBEAT_SECONDS="0.3")
    job_id = service.post({"type": "test.sleep", "payload": {"seconds": 2}})
    _wait_for(lambda: [e for e in service.executions() if e["event"] == "start"])
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.time()
    victim.wait()
    service.start_worker(JOBSVC_LEASE_SECONDS="1.5", JOBSVC_HEARTBEAT_SECONDS="0.3")
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "DONE" and job["attempts"] == 2
    starts = [e for e in service.executions() if e["event"] == "start"]
    ends = [e for e in service.executions() if e["event"] == "end"]
    assert [s["attempt"] for s in starts] == [1, 2]
    assert starts[0]["pid"] == victim.pid and starts[1]["pid"] != victim.pid
    assert [e["attempt"] for e in ends] == [2]
    # No overlap: the second attempt began only after the first one's process was gone.
    assert starts[1]["t"] > killed_at


def test_sigterm_drains_the_running_job_and_exits_zero(service):
    service.start_api()
    worker = service.start_worker()
    job_id = service.post({"type": "test.sleep", "payload": {"seconds": 1}})
    _wait_for(lambda: [e for e in service.executions() if e["event"] == "start"])
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    job = service.get(job_id)
    assert job["status"] == "DONE"
    queued_after = service.post({"type": "test.echo"})
    time.sleep(0.3)
    assert service.get(queued_after)["status"] == "PENDING"  # the stopped worker took nothing


def test_two_workers_drain_500_jobs_each_exactly_once(service):
    base_url = service.start_api()
    service.start_worker("--concurrency", "4")
    service.start_worker("--concurrency", "4")
    # Both must be serving before the jobs arrive: one worker alone drains 500 no-op jobs
    # faster than a second process starts.
    logs = [service.tmp_path / "worker1.log", service.tmp_path / "worker2.log"]
    _wait_for(lambda: all(" started: " in log.read_text() for log in logs))
    body = {"jobs": [{"type": "test.echo", "payload": {"i": i}, "max_attempts": 1}
                     for i in range(500)]}
    response = requests.post(f"{base_url}/jobs/batch", json=body, timeout=30)
    assert response.status_code == 201
    ids = [job["id"] for job in response.json()["jobs"]]

    def all_done():
        page = requests.get(f"{base_url}/jobs?status=DONE&limit=500", timeout=10).json()
        return len(page["jobs"]) == 500

    _wait_for(all_done, timeout=120, interval=0.2)
    runs = Counter(e["job_id"] for e in service.executions() if e["event"] == "start")
    assert set(runs) == set(ids)
    assert max(runs.values()) == 1
    assert len({e["pid"] for e in service.executions()}) == 2  # both workers took part
