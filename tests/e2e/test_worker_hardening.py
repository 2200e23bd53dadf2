"""End to end: whatever a handler raises or returns, its attempt ends and its slot goes on."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from tests.support.processes import REPO
from tests.support.settings import slow_e2e_backends
from tests.support.waiting import wait_until

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("sqlite")

SMALL_RESULT_BYTES = 10_000
PROMPT_EXIT_SECONDS = 15.0

HOSTILE = [
    pytest.param(
        {"type": "test.unprintable_error", "max_attempts": 1},
        "_Unprintable: <_Unprintable whose str() and repr() raise>",
        id="raising-str-and-repr",
    ),
    pytest.param(
        {"type": "test.deep_result", "payload": {"depth": 5000}},
        "ResultTooDeep: the handler's result nests deeper than JOBSVC_MAX_JSON_DEPTH=32",
        id="deep-result",
    ),
    pytest.param(
        {"type": "test.deep_result", "payload": {"depth": 40}},
        "ResultTooDeep: the handler's result nests deeper than JOBSVC_MAX_JSON_DEPTH=32",
        id="deep-result-under-the-recursion-limit",
    ),
    pytest.param(
        {"type": "test.big_result", "payload": {"bytes": SMALL_RESULT_BYTES}},
        "ResultTooLarge: the handler's result is 10012 bytes of JSON, "
        f"over JOBSVC_MAX_RESULT_BYTES={SMALL_RESULT_BYTES // 2}",
        id="oversized-result",
    ),
]


@pytest.mark.parametrize(("job", "last_error"), HOSTILE)
def test_hostile_outcome_fails_the_job_and_the_slot_serves_the_next(service, job, last_error):
    service.start_api()
    service.start_worker("--concurrency", "1", JOBSVC_MAX_RESULT_BYTES=str(SMALL_RESULT_BYTES // 2))
    hostile = service.post(job)
    after = service.post({"type": "test.echo", "payload": {"n": 1}})
    failed, done = service.wait_terminal([hostile, after], timeout=30)
    assert (failed["status"], failed["attempts"]) == ("FAILED", 1)
    assert failed["last_error"] == last_error
    assert done["status"] == "DONE"
    assert done["result"] == {"echo": {"n": 1}, "attempt": 1}


def test_lone_surrogate_message_keeps_its_retry_and_its_text(service):
    service.start_api()
    service.start_worker("--concurrency", "1")
    job_id = service.post({"type": "test.surrogate_error", "max_attempts": 2})
    after = service.post({"type": "test.echo"})
    failed, done = service.wait_terminal([job_id, after], timeout=30)
    assert (failed["status"], failed["attempts"]) == ("FAILED", 2)  # retried, not refused
    assert failed["last_error"] == "ValueError: bad text \\udcff here"
    assert failed["error_type"] == "ValueError"
    assert done["status"] == "DONE"


def test_async_handler_runs_to_done_with_its_result(service):
    service.start_api()
    service.start_worker("--concurrency", "2")
    ids = [service.post({"type": "test.async_sleep"}) for _ in range(3)]
    for job in service.wait_terminal(ids, timeout=30):
        assert job["status"] == "DONE"
        assert job["result"] == {"slept": 0.05, "attempt": 1}


def test_async_handler_past_its_timeout_fails_and_the_worker_goes_on(service):
    service.start_api()
    service.start_worker("--concurrency", "1")
    hung = service.post({"type": "test.async_hang", "timeout_seconds": 0.5, "max_attempts": 1})
    after = service.post({"type": "test.async_sleep"})
    failed, done = service.wait_terminal([hung, after], timeout=30)
    assert (failed["status"], failed["error_type"]) == ("FAILED", "JobTimeout")
    assert done["status"] == "DONE"


def test_sigterm_exits_zero_though_a_handler_left_a_non_daemon_thread(service):
    service.start_api()
    worker = service.start_worker("--concurrency", "1")
    (job,) = service.wait_terminal([service.post({"type": "test.leaves_thread"})])
    assert job["status"] == "DONE"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(PROMPT_EXIT_SECONDS) == 0
    wait_until(lambda: "stopped" in service.log("worker1"), message="no 'stopped' line")


LOGGED_JOBS = 1000  # two lines each: far more than a pipe's 64 KiB buffer holds
LONGER_THAN_LEASE_SECONDS = 3.0  # FAST_SETTINGS' lease is 2 s: it lives only by heartbeats


def _worker_on_pipe(service) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "worker", "--queues", "*", "--concurrency", "4"],
        cwd=REPO,
        env=service.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    service.children.append(child)
    return child


def _run_many_and_one_longer_than_the_lease(service) -> None:
    body = {"jobs": [{"type": "test.echo", "max_attempts": 1} for _ in range(LOGGED_JOBS)]}
    response = requests.post(f"{service.base_url}/jobs/batch", json=body, timeout=30)
    assert response.status_code == 201
    slow = service.post(
        {"type": "test.sleep", "payload": {"seconds": LONGER_THAN_LEASE_SECONDS}, "max_attempts": 1}
    )

    def none_left() -> bool:
        return not any(
            requests.get(f"{service.base_url}/jobs?status={status}&limit=1", timeout=10).json()[
                "jobs"
            ]
            for status in ("PENDING", "RUNNING")
        )

    wait_until(none_left, timeout=120, interval=0.2, message="jobs left unfinished")
    done = requests.get(f"{service.base_url}/jobs?status=DONE&limit=1", timeout=10).json()
    assert done["jobs"], "no job ended DONE"
    assert (
        requests.get(f"{service.base_url}/jobs?status=FAILED&limit=1", timeout=10).json()["jobs"]
        == []
    )
    job = service.get(slow)
    assert (job["status"], job["attempts"]) == ("DONE", 1)  # its lease was kept alive


def test_a_stderr_pipe_nobody_reads_does_not_stop_the_worker(service):
    service.start_api()
    worker = _worker_on_pipe(service)
    try:
        _run_many_and_one_longer_than_the_lease(service)
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(PROMPT_EXIT_SECONDS) == 0
    finally:
        assert worker.stderr is not None
        worker.stderr.close()


def test_a_closed_stderr_does_not_stop_the_worker(service):
    service.start_api()
    worker = _worker_on_pipe(service)
    assert worker.stderr is not None
    worker.stderr.close()  # every write the worker makes to stderr now fails (EPIPE)
    _run_many_and_one_longer_than_the_lease(service)
    assert worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(PROMPT_EXIT_SECONDS) == 0
