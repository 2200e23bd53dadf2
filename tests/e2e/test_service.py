"""End to end: the real API under waitress and real worker processes on one database."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import requests

from jobsvc.retry import max_delay
from tests.support.settings import slow_e2e_backends
from tests.support.waiting import wait_until

RETRY_BASE_SECONDS = 0.5
# From the failure's write to the retry's start: the outcome flush, a poll and the claim.
PICKUP_SLACK_SECONDS = 0.4
CLOCK_SLACK_SECONDS = 0.01  # the database's and the handler's readings of one host clock
DRAINED_JOB_SECONDS = 2.0
DUE_AFTER_SIGTERM_SECONDS = 0.5  # the worker has long handled the signal by then


def _epoch(stamp: str) -> float:
    moment = datetime.fromisoformat(stamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _starts(service, job_id: int | None = None) -> list[dict]:
    return [
        e for e in service.executions() if e["event"] == "start" and job_id in (None, e["job_id"])
    ]


def test_seed_example_runs_from_post_to_done(service):
    service.start_api()
    service.start_worker()
    job_id = service.post(
        {"type": "test.echo", "payload": {"user_id": "123", "range": "last_week"}}
    )
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "DONE"
    assert job["attempts"] == 1
    assert job["result"] == {"echo": {"user_id": "123", "range": "last_week"}, "attempt": 1}
    assert job["last_error"] is None


def test_retries_follow_the_backoff_rule_until_done(service):
    service.start_api()
    service.start_worker(
        JOBSVC_RETRY_BASE_SECONDS=str(RETRY_BASE_SECONDS), JOBSVC_RETRY_MAX_SECONDS="10"
    )
    job_id = service.post({"type": "test.flaky", "payload": {"succeed_on": 3}, "max_attempts": 3})
    scheduled = _watch_retry_schedules(service, job_id)
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "DONE" and job["attempts"] == 3
    assert job["result"] == {"attempt": 3}
    runs = [e for e in service.executions() if e["job_id"] == job_id]
    starts = [e for e in runs if e["event"] == "start"]
    failures = [e for e in runs if e["event"] == "end" and e.get("failed")]
    assert [e["attempt"] for e in starts] == [1, 2, 3]
    assert [e["attempt"] for e in failures] == [1, 2]
    # Every retry waits no longer than its attempt's bound (plus the pickup), never less than 0.
    for failure, retry in zip(failures, starts[1:], strict=True):
        bound = max_delay(failure["attempt"], base=RETRY_BASE_SECONDS, cap=10.0)
        assert 0 < retry["t"] - failure["t"] <= bound + PICKUP_SLACK_SECONDS, (failure, retry)
    # The last retry did not start before the time its failure scheduled it for.
    assert starts[2]["t"] >= _epoch(job["run_at"]) - CLOCK_SLACK_SECONDS
    for attempt, delay in scheduled.items():  # the schedules the API showed while waiting
        bound = max_delay(attempt, base=RETRY_BASE_SECONDS, cap=10.0)
        assert 0 <= delay <= bound + 1e-3, (attempt, delay)


def _watch_retry_schedules(service, job_id: int) -> dict[int, float]:
    """Return each retry delay the API showed while the job waited for it, once it ended."""
    scheduled: dict[int, float] = {}

    def ended() -> bool:
        job = service.get(job_id)
        if job["status"] == "PENDING" and job["attempts"] >= 1:
            # The failure wrote updated_at and run_at with one reading of the database clock.
            scheduled[job["attempts"]] = _epoch(job["run_at"]) - _epoch(job["updated_at"])
        return job["status"] in ("DONE", "FAILED")

    wait_until(ended, timeout=60, interval=0.005, message=f"job {job_id} did not end")
    return scheduled


def test_always_failing_job_ends_failed_after_max_attempts(service):
    service.start_api()
    service.start_worker()
    job_id = service.post({"type": "test.always_fails", "max_attempts": 4})
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "FAILED" and job["attempts"] == 4
    assert job["last_error"] == "ValueError: this handler always fails"
    assert len([e for e in service.executions() if e["event"] == "start"]) == 4


@slow_e2e_backends("sqlite")  # one backend in `make test`, both at full size
def test_killed_worker_job_is_finished_by_another_after_its_lease_expires(service):
    service.start_api()
    victim = service.start_worker(JOBSVC_LEASE_SECONDS="1.5", JOBSVC_HEARTBEAT_SECONDS="0.3")
    job_id = service.post({"type": "test.sleep", "payload": {"seconds": 2}})
    wait_until(lambda: _starts(service), message="the job did not start")
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


def test_sigterm_drains_the_running_job_claims_nothing_more_and_exits_zero(service):
    service.start_api()
    worker = service.start_worker("--concurrency", "2")  # a slot stays free while it drains
    running = service.post({"type": "test.sleep", "payload": {"seconds": DRAINED_JOB_SECONDS}})
    wait_until(lambda: _starts(service, running), message="the job did not start")
    # Due only once the worker is draining: a worker that kept claiming would take it.
    due = datetime.now(UTC) + timedelta(seconds=DUE_AFTER_SIGTERM_SECONDS)
    queued = service.post({"type": "test.echo", "run_at": due.isoformat()})
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert datetime.now(UTC) > due + timedelta(seconds=0.5)  # it drained well past the due time
    assert service.get(running)["status"] == "DONE"
    job = service.get(queued)
    assert (job["status"], job["attempts"]) == ("PENDING", 0)
    assert not _starts(service, queued)


def test_two_workers_drain_500_jobs_each_exactly_once(service):
    base_url = service.start_api()
    service.start_worker("--concurrency", "4")
    service.start_worker("--concurrency", "4")
    # Both must be serving before the jobs arrive: one worker alone drains 500 no-op jobs
    # faster than a second process starts.
    wait_until(
        lambda: all(" started: " in service.log(name) for name in ("worker1", "worker2")),
        message="the workers did not start",
    )
    body = {
        "jobs": [{"type": "test.echo", "payload": {"i": i}, "max_attempts": 1} for i in range(500)]
    }
    response = requests.post(f"{base_url}/jobs/batch", json=body, timeout=30)
    assert response.status_code == 201
    ids = [job["id"] for job in response.json()["jobs"]]

    def all_done():
        page = requests.get(f"{base_url}/jobs?status=DONE&limit=500", timeout=10).json()
        return len(page["jobs"]) == 500

    wait_until(all_done, timeout=120, interval=0.2, message="not all 500 jobs are DONE")
    runs = Counter(e["job_id"] for e in service.executions() if e["event"] == "start")
    assert set(runs) == set(ids)
    assert max(runs.values()) == 1
    assert len({e["pid"] for e in service.executions()}) == 2  # both workers took part
