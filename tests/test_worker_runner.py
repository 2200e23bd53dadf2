"""The worker loop in-process, against a real database: outcomes, timeouts, lost leases."""

from __future__ import annotations

import logging
import threading

import pytest

import tests.handlers  # noqa: F401 - registers the test handlers
from jobsvc.models import JobStatus
from jobsvc.store import NewJob
from tests.support.draining import burst_runner, drain
from tests.support.waiting import wait_until


def _enqueue(job_store, job_type, payload=None, **options):
    fields = {"queue": "default", "priority": 0, "max_attempts": 3, **options}
    (job_id,) = job_store.enqueue([NewJob(type=job_type, payload=payload or {}, **fields)])
    return job_id


def test_handler_result_becomes_the_job_result(engine, job_store):
    job_id = _enqueue(job_store, "test.echo", {"user_id": "123"})
    (record,) = drain(engine, job_store, [job_id])
    assert record.status is JobStatus.DONE
    assert record.result == {"echo": {"user_id": "123"}, "attempt": 1}
    assert record.attempts == 1 and record.finished_at is not None


def test_failing_twice_then_succeeding_ends_done_after_three_attempts(engine, job_store):
    job_id = _enqueue(job_store, "test.flaky", {"succeed_on": 3})
    (record,) = drain(engine, job_store, [job_id])
    assert (record.status, record.attempts) == (JobStatus.DONE, 3)
    assert record.last_error == "RuntimeError: attempt 2 fails on purpose"


def test_always_failing_ends_failed_with_error_and_traceback(engine, job_store):
    job_id = _enqueue(job_store, "test.always_fails", max_attempts=2)
    (record,) = drain(engine, job_store, [job_id])
    assert (record.status, record.attempts) == (JobStatus.FAILED, 2)
    assert record.last_error == "ValueError: this handler always fails"
    assert record.error_type == "ValueError"
    assert "always_fails" in record.error_traceback


def test_permanent_error_fails_on_the_first_attempt(engine, job_store):
    job_id = _enqueue(job_store, "test.permanent", max_attempts=5)
    (record,) = drain(engine, job_store, [job_id])
    assert (record.status, record.attempts) == (JobStatus.FAILED, 1)
    assert record.error_type == "PermanentError"


def test_handler_calling_sys_exit_fails_its_attempt_and_the_worker_goes_on(engine, job_store):
    exiting = _enqueue(job_store, "test.exits", max_attempts=2)
    after = _enqueue(job_store, "test.echo")
    records = drain(engine, job_store, [exiting, after], concurrency=1)
    assert (records[0].status, records[0].attempts) == (JobStatus.FAILED, 2)
    assert records[0].error_type == "SystemExit"
    assert records[1].status is JobStatus.DONE


def test_error_message_with_a_nul_byte_is_kept_readable(engine, job_store):
    job_id = _enqueue(job_store, "test.nul_error")
    (record,) = drain(engine, job_store, [job_id])
    assert record.status is JobStatus.FAILED
    assert record.last_error == "PermanentError: bad byte \\x00 in input"


def test_unknown_type_fails_with_a_clear_error(engine, job_store):
    job_id = _enqueue(job_store, "nobody.handles.this")
    (record,) = drain(engine, job_store, [job_id])
    assert record.status is JobStatus.FAILED and record.attempts == 1
    assert "no handler is registered for job type 'nobody.handles.this'" in record.last_error


def test_result_that_is_not_json_fails_the_job(engine, job_store):
    job_id = _enqueue(job_store, "test.not_json")
    (record,) = drain(engine, job_store, [job_id])
    assert record.status is JobStatus.FAILED
    assert "not JSON" in record.last_error


def test_hung_handler_is_stopped_at_its_timeout_and_the_slot_reused(engine, job_store):
    hung = _enqueue(job_store, "test.spin", timeout_seconds=0.3, max_attempts=2)
    others = [_enqueue(job_store, "test.echo") for _ in range(3)]
    records = drain(engine, job_store, [hung, *others], concurrency=1)
    assert records[0].status is JobStatus.FAILED and records[0].attempts == 2
    assert records[0].error_type == "JobTimeout"
    assert all(r.status is JobStatus.DONE for r in records[1:])


def test_cancelling_a_running_job_stops_its_handler(engine, job_store, caplog):
    caplog.set_level(logging.INFO, logger="worker.events")
    job_id = _enqueue(job_store, "test.spin")  # never looks at ctx.cancelled
    runner = burst_runner(engine, burst=False, cancel_grace_seconds=0.3)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        wait_until(lambda: job_store.get(job_id).status is JobStatus.RUNNING)
        job_store.cancel(job_id)
        wait_until(lambda: not runner.executor.busy(), timeout=5)
    finally:
        runner.request_stop()
        thread.join(10)
    assert not thread.is_alive()
    assert job_store.get(job_id).status is JobStatus.CANCELLED
    assert [e.event for e in _events(caplog, job_id)] == ["claimed", "cancelling"]


def test_stop_releases_jobs_still_running_after_the_grace_period(engine, job_store, caplog):
    caplog.set_level(logging.INFO, logger="worker.events")
    job_id = _enqueue(job_store, "test.sleep", {"seconds": 30})
    runner = burst_runner(engine, burst=False, shutdown_grace_seconds=0.3)
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_until(lambda: job_store.get(job_id).status is JobStatus.RUNNING)
    runner.request_stop()
    thread.join(10)
    assert not thread.is_alive()
    record = job_store.get(job_id)
    assert (record.status, record.attempts) == (JobStatus.PENDING, 0)
    assert [e.event for e in _events(caplog, job_id)] == ["claimed", "released"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_many_jobs_each_run_once(engine, job_store, concurrency):
    ids = job_store.enqueue(
        [
            NewJob(type="test.echo", payload={"i": i}, queue="default", priority=0, max_attempts=1)
            for i in range(40)
        ]
    )
    records = drain(engine, job_store, ids, concurrency=concurrency)
    assert all(r.status is JobStatus.DONE and r.attempts == 1 for r in records)
    assert [r.result["echo"]["i"] for r in records] == list(range(40))


def _events(caplog, job_id):
    return [r for r in caplog.records if getattr(r, "job_id", None) == job_id]


def test_a_job_that_fails_then_succeeds_reads_claimed_retry_claimed_succeeded(
    engine, job_store, caplog
):
    caplog.set_level(logging.INFO, logger="worker.events")
    job_id = _enqueue(job_store, "test.flaky", {"succeed_on": 2, "secret": "hunter2"})
    (record,) = drain(engine, job_store, [job_id])
    assert (record.status, record.attempts) == (JobStatus.DONE, 2)
    events = _events(caplog, job_id)
    assert [(e.event, e.attempt) for e in events] == [
        ("claimed", 1),
        ("retry_scheduled", 1),
        ("claimed", 2),
        ("succeeded", 2),
    ]
    assert {(e.type, e.queue) for e in events} == {("test.flaky", "default")}
    assert all(e.worker for e in events)  # every event names the worker that wrote it
    retry = events[1]
    assert (retry.error_type, retry.error) == (
        "RuntimeError",
        "RuntimeError: attempt 1 fails on purpose",
    )
    assert events[-1].duration >= 0
    assert retry.getMessage().startswith(
        f"retry scheduled job_id={job_id} type=test.flaky attempt=1: RuntimeError"
    )
    assert all(
        "hunter2" not in r.getMessage() and "hunter2" not in repr(vars(r)) for r in caplog.records
    )  # payloads never reach the log


def test_a_job_out_of_attempts_ends_with_a_failed_warning(engine, job_store, caplog):
    caplog.set_level(logging.INFO, logger="worker.events")
    job_id = _enqueue(job_store, "test.always_fails", max_attempts=1)
    drain(engine, job_store, [job_id])
    (claimed, failed) = _events(caplog, job_id)
    assert (claimed.event, failed.event, failed.levelno) == ("claimed", "failed", logging.WARNING)
    assert failed.error == "ValueError: this handler always fails"


def test_a_timed_out_job_says_so_before_its_outcome(engine, job_store, caplog):
    caplog.set_level(logging.INFO, logger="worker.events")
    job_id = _enqueue(job_store, "test.spin", timeout_seconds=0.2, max_attempts=1)
    drain(engine, job_store, [job_id], concurrency=1)
    assert [e.event for e in _events(caplog, job_id)] == ["claimed", "timed_out", "failed"]
    assert _events(caplog, job_id)[-1].error_type == "JobTimeout"


def test_a_worker_says_when_it_starts_and_stops(engine, caplog):
    caplog.set_level(logging.INFO, logger="worker.events")
    runner = burst_runner(engine)
    runner.run()
    worker = [r for r in caplog.records if getattr(r, "worker", None) == runner.worker_id]
    assert [r.event for r in worker] == ["started", "stopped"]
    assert worker[0].getMessage() == (
        f"worker {runner.worker_id} started: queues=* concurrency=2 pool=threads"
    )
