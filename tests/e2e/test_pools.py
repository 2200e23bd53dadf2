"""End to end: the processes and asyncio pools, with the real API and worker processes.

Under ``--pool processes`` a handler that holds the GIL, calls ``os._exit`` or leaks takes
down only its child; timeouts and cancels are real stops. Under ``--pool asyncio`` a timeout or
a cancel cancels the handler's task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from tests.support.settings import slow_e2e_backends
from tests.support.waiting import wait_until

PROCESS_HANDLERS = "tests.handlers,tests.cancel_handlers,tests.pool_handlers"
ASYNC_HANDLERS = "tests.async_handlers"
STOP_WITHIN_SECONDS = 1.0
TIMEOUT_SLACK_SECONDS = 1.5  # the heartbeat loop's wake-up, the kill, a loaded machine
MAX_JOBS_PER_CHILD = 3
CANCEL_GRACE_SECONDS = 0.3  # a cooperative handler stops well before; a stubborn one after


def _start(service, *flags: str, handlers: str = PROCESS_HANDLERS, **env: str):
    service.env["JOBSVC_HANDLERS"] = handlers
    service.start_api()
    return service.start_worker(*flags, JOBSVC_LEASE_SECONDS="10", **env)


def _records(service, job_id: int, event: str) -> list[dict]:
    return [e for e in service.executions() if e["job_id"] == job_id and e["event"] == event]


def _started(service, job_id: int, attempt: int = 1) -> dict:
    records = wait_until(
        lambda: [r for r in _records(service, job_id, "start") if r["attempt"] == attempt],
        message=f"attempt {attempt} of job {job_id} did not start",
    )
    return records[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _cancel(service, job_id: int) -> float:
    response = requests.post(f"{service.base_url}/jobs/{job_id}/cancel", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    return time.monotonic()


def _gil_holding_regex_times_out_on_time_and_only_its_child_dies(service) -> None:
    job_id = service.post(
        {"type": "pool.regex", "payload": {"n": 40}, "timeout_seconds": 1, "max_attempts": 2}
    )
    first = _started(service, job_id)
    # The parent's heartbeats and the other child go on while the regex holds its child's GIL.
    bystanders = [service.post({"type": "pool.pid", "payload": {}}) for _ in range(3)]
    done = service.wait_terminal(bystanders)
    assert all(job["status"] == "DONE" for job in done)
    assert all(job["result"]["pid"] != first["pid"] for job in done)
    second = _started(service, job_id, attempt=2)
    # No second attempt while the first still runs: its child was gone before the retry began.
    assert not _alive(first["pid"]) and second["pid"] != first["pid"]
    assert 1.0 <= second["t"] - first["t"] < 1.0 + TIMEOUT_SLACK_SECONDS + 1.0  # + the backoff
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "FAILED" and job["attempts"] == 2
    assert job["last_error"].startswith("JobTimeout"), job["last_error"]


def _os_exit_fails_its_job_and_costs_bystanders_nothing(service) -> None:
    job_id = service.post({"type": "pool.exit", "payload": {"code": 3}, "max_attempts": 2})
    bystanders = [service.post({"type": "pool.pid", "payload": {}}) for _ in range(4)]
    (job,) = service.wait_terminal([job_id])
    assert job["status"] == "FAILED" and job["attempts"] == 2
    assert "WorkerProcessDied" in job["last_error"] and "exited with code 3" in job["last_error"]
    done = service.wait_terminal(bystanders)
    assert [job["status"] for job in done] == ["DONE"] * 4
    assert all(job["attempts"] == 1 for job in done)  # the poison job cost them nothing


def _leaky_child_is_recycled(service, worker_log: str) -> None:
    (job,) = service.wait_terminal([service.post({"type": "pool.leak", "payload": {"mb": 120}})])
    assert job["status"] == "DONE"  # the job that leaked succeeded; its child is replaced after
    wait_until(lambda: not _alive(job["result"]["pid"]), message="the leaky child lives on")
    wait_until(
        lambda: "over --max-memory-per-child=102400 KiB" in service.log(worker_log),
        message="the worker did not say why it recycled the child",
    )


def _children_run_at_most_max_jobs(service) -> None:
    jobs = service.wait_terminal(
        [service.post({"type": "pool.pid", "payload": {}}) for _ in range(8)]
    )
    pids = [job["result"]["pid"] for job in jobs]
    assert max(pids.count(pid) for pid in pids) <= MAX_JOBS_PER_CHILD
    assert len(set(pids)) >= -(-len(pids) // MAX_JOBS_PER_CHILD)  # a new child per 3 jobs


def _cancel_stops_a_stubborn_child_within_a_second(service) -> None:
    job_id = service.post({"type": "pool.pid", "payload": {"seconds": 60}, "max_attempts": 1})
    first = _started(service, job_id)
    cancelled = _cancel(service, job_id)
    wait_until(lambda: not _alive(first["pid"]), timeout=5, message="the child was not stopped")
    # The grace, then SIGTERM; + this test's polling.
    assert time.monotonic() - cancelled < STOP_WITHIN_SECONDS + 0.5
    assert service.get(job_id)["status"] == "CANCELLED"


def _a_cooperative_handler_in_a_child_sees_the_cancel(service) -> None:
    job_id = service.post({"type": "cancel.cooperative", "payload": {"seconds": 60}})
    _started(service, job_id)
    answered = time.time()
    _cancel(service, job_id)  # the parent signals its child, where ctx.cancelled turns true
    (end,) = wait_until(lambda: _records(service, job_id, "end"), timeout=5)
    assert end["how"] == "Cancelled" and end["cancelled"] is True
    assert end["t"] - answered < STOP_WITHIN_SECONDS


@slow_e2e_backends("postgresql")  # one backend in `make test`, both at full size
def test_the_processes_pool_contains_hostile_handlers_and_stops_for_real(service):
    """One worker (starting one is most of a test's time) meets every hostile handler."""
    worker = _start(
        service,
        "--pool",
        "processes",
        "--concurrency",
        "2",
        "--max-jobs-per-child",
        str(MAX_JOBS_PER_CHILD),
        "--max-memory-per-child",
        "100MB",
        JOBSVC_CANCEL_GRACE_SECONDS=str(CANCEL_GRACE_SECONDS),
    )
    _gil_holding_regex_times_out_on_time_and_only_its_child_dies(service)
    _os_exit_fails_its_job_and_costs_bystanders_nothing(service)
    _leaky_child_is_recycled(service, "worker1")
    _children_run_at_most_max_jobs(service)
    _cancel_stops_a_stubborn_child_within_a_second(service)
    _a_cooperative_handler_in_a_child_sees_the_cancel(service)
    assert worker.poll() is None


@slow_e2e_backends("postgresql")  # one backend in `make test`, both at full size
def test_an_async_handler_times_out_and_is_cancelled_under_the_asyncio_pool(service):
    _start(service, "--pool", "asyncio", handlers=ASYNC_HANDLERS, JOBSVC_CANCEL_GRACE_SECONDS="0")
    timed = service.post(
        {"type": "aio.sleep", "payload": {"seconds": 60}, "timeout_seconds": 0.5, "max_attempts": 1}
    )
    start = _started(service, timed)
    (end,) = wait_until(lambda: _records(service, timed, "end"), timeout=5)
    assert end["how"] == "CancelledError" and 0.5 <= end["t"] - start["t"] < 0.5 + 1.0
    (job,) = service.wait_terminal([timed])
    assert job["status"] == "FAILED" and job["last_error"].startswith("JobTimeout")
    for job_type in ("aio.sleep", "aio.cooperative"):
        job_id = service.post({"type": job_type, "payload": {"seconds": 60}, "max_attempts": 1})
        _started(service, job_id)
        answered = time.time()
        _cancel(service, job_id)
        (end,) = wait_until(lambda: _records(service, job_id, "end"), timeout=5)  # noqa: B023
        # Told (ctx.cancelled) and stopped: by its own check or the task's cancel (grace 0).
        assert end["cancelled"] is True and end["how"] in {"Cancelled", "CancelledError"}
        assert end["t"] - answered < STOP_WITHIN_SECONDS
        assert service.get(job_id)["status"] == "CANCELLED"


def _refused_at_start(tmp_path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run a worker that must refuse ``flags`` before claiming anything (a private SQLite file
    is database enough)."""
    database_url = f"sqlite:///{tmp_path / 'jobsvc.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": database_url, "JOBSVC_AUTO_MIGRATE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "worker", *flags, "--handlers", "tests.handlers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_asyncio_pool_refuses_plain_def_handlers_at_start(tmp_path):
    done = _refused_at_start(tmp_path, "--pool", "asyncio")
    assert done.returncode == 2
    assert "--pool asyncio runs async def handlers only" in done.stderr
    assert "test.echo" in done.stderr


@slow_e2e_backends("sqlite")  # one backend in `make test`, both at full size
def test_a_prefetched_job_waits_claimed_and_a_stopping_worker_releases_it_unrun(service):
    worker = _start(
        service, "--pool", "processes", "--concurrency", "1", JOBSVC_SHUTDOWN_GRACE_SECONDS="60"
    )
    running = service.post({"type": "pool.pid", "payload": {"seconds": 2}, "max_attempts": 1})
    _started(service, running)
    waiting = service.post({"type": "pool.pid", "payload": {}, "max_attempts": 1})
    # The one child is busy: the second job is claimed ahead (--prefetch defaults to one per
    # child), so the child will start it without waiting for a claim.
    wait_until(lambda: service.get(waiting)["status"] == "RUNNING", message="not prefetched")
    worker.send_signal(signal.SIGTERM)
    # The grace is for the job that runs; the prefetched one goes back at once, its attempt
    # not spent, while the first is still running.
    wait_until(lambda: service.get(waiting)["status"] == "PENDING", timeout=5)
    assert service.get(running)["status"] == "RUNNING"
    assert service.get(waiting)["attempts"] == 0
    assert worker.wait(30) == 0
    (done,) = service.wait_terminal([running])
    assert done["status"] == "DONE"
    assert _records(service, waiting, "start") == []  # never began anywhere


def test_prefetch_zero_claims_no_more_than_the_children(service):
    _start(service, "--pool", "processes", "--concurrency", "1", "--prefetch", "0")
    running = service.post({"type": "pool.pid", "payload": {"seconds": 1}, "max_attempts": 1})
    _started(service, running)
    waiting = service.post({"type": "pool.pid", "payload": {}, "max_attempts": 1})
    # It is claimed only once the child is free: until then another worker could take it.
    (done,) = service.wait_terminal([running])
    first_end = _records(service, running, "end")[0]["t"]
    assert _started(service, waiting)["t"] >= first_end
    assert service.wait_terminal([waiting])[0]["status"] == "DONE"
    assert done["status"] == "DONE"


def test_prefetch_is_refused_with_a_pool_that_has_no_children(tmp_path):
    for flags, message in (
        (["--prefetch", "2"], "--prefetch is refused with --pool threads"),
        (["--pool", "processes", "--prefetch", "-1"], "--prefetch=-1 is refused"),
        (["--pool", "processes", "--prefetch", "100000"], "expected 0 to 256"),
    ):
        done = _refused_at_start(tmp_path, *flags)
        assert done.returncode == 2 and message in done.stderr, done.stderr
