"""End to end: whatever a handler raises or returns, its attempt ends and its slot goes on."""

from __future__ import annotations

import signal

import pytest

from tests.support.waiting import wait_until

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


def test_sigterm_exits_zero_though_a_handler_left_a_non_daemon_thread(service):
    service.start_api()
    worker = service.start_worker("--concurrency", "1")
    (job,) = service.wait_terminal([service.post({"type": "test.leaves_thread"})])
    assert job["status"] == "DONE"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(PROMPT_EXIT_SECONDS) == 0
    wait_until(lambda: "stopped" in service.log("worker1"), message="no 'stopped' line")
