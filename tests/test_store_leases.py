"""The lease protocol against a real database: claim, fence, heartbeat, rescue."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from jobsvc.models import JobStatus
from jobsvc.retry import max_delay
from jobsvc.store import Failed, Lease, NewJob, Released, Succeeded
from tests.support.settings import RETRY_SEED
from tests.support.waiting import wait_until

WORKER = "test-worker"
STORED_TIME_PRECISION_SECONDS = 1e-3


def _new(job_type="test.echo", **options):
    fields = {"payload": {}, "queue": "default", "priority": 0, "max_attempts": 3, **options}
    return NewJob(type=job_type, **fields)


def _expire_leases(engine):
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET lease_expires_at = created_at WHERE status = 'RUNNING'")
        )


def test_claim_takes_highest_priority_then_oldest(job_store, lease_store):
    ids = job_store.enqueue([_new(priority=0), _new(priority=5), _new(priority=5), _new()])
    claimed = lease_store.claim(None, 3, WORKER, 30)
    assert [job.id for job in claimed] == [ids[1], ids[2], ids[0]]
    assert all(job.attempt == 1 for job in claimed)
    record = job_store.get(ids[1])
    assert record.status is JobStatus.RUNNING and record.locked_by == WORKER
    assert record.lease_expires_at > datetime.now(UTC) + timedelta(seconds=20)


def test_claim_skips_future_jobs_and_other_queues(job_store, lease_store):
    later = datetime.now(UTC) + timedelta(hours=1)
    job_store.enqueue([_new(run_at=later), _new(queue="mail")])
    assert lease_store.claim(["default"], 10, WORKER, 30) == []
    assert [job.queue for job in lease_store.claim(["mail", "other"], 10, WORKER, 30)] == ["mail"]


def test_success_is_fenced_by_the_lease_token(job_store, lease_store):
    (job_id,) = job_store.enqueue([_new()])
    (job,) = lease_store.claim(None, 1, WORKER, 30)
    stale = Lease(job_id, "not-the-token")
    assert lease_store.finish([Succeeded(stale, {"x": 1})]) == [job_id]
    assert job_store.get(job_id).status is JobStatus.RUNNING
    assert lease_store.finish([Succeeded(job.lease, {"x": 2})]) == []
    record = job_store.get(job_id)
    assert (record.status, record.result, record.lease_token) == (JobStatus.DONE, {"x": 2}, None)
    # The same outcome again (a duplicate delivery) changes nothing.
    assert lease_store.finish([Succeeded(job.lease, {"x": 3})]) == [job_id]
    assert job_store.get(job_id).result == {"x": 2}


def test_failure_schedules_the_retry_by_the_backoff_rule(job_store, lease_store):
    (job_id,) = job_store.enqueue([_new(max_attempts=3)])
    draws = random.Random(RETRY_SEED)  # the lease_store fixture's policy draws from this seed
    for attempt in (1, 2):
        (job,) = _claim_when_ready(lease_store)
        failure = Failed(job.lease, job.attempt, 3, "RuntimeError: boom", "RuntimeError")
        assert lease_store.finish([failure]) == []
        record = job_store.get(job_id)
        assert record.status is JobStatus.PENDING
        assert record.attempts == attempt
        delay = (record.run_at - record.updated_at).total_seconds()
        expected = draws.uniform(0.0, max_delay(attempt, base=0.05, cap=1.0))
        assert delay == pytest.approx(expected, abs=STORED_TIME_PRECISION_SECONDS)
        assert record.last_error == "RuntimeError: boom"
    (job,) = _claim_when_ready(lease_store)
    lease_store.finish([Failed(job.lease, job.attempt, 3, "RuntimeError: boom", "RuntimeError")])
    record = job_store.get(job_id)
    assert (record.status, record.attempts) == (JobStatus.FAILED, 3)
    assert record.finished_at is not None


def _claim_when_ready(lease_store, timeout=3.0):
    return wait_until(
        lambda: lease_store.claim(None, 1, WORKER, 30),
        timeout=timeout,
        interval=0.01,
        message="nothing became ready",
    )


def test_permanent_failure_fails_at_once(job_store, lease_store):
    (job_id,) = job_store.enqueue([_new(max_attempts=5)])
    (job,) = lease_store.claim(None, 1, WORKER, 30)
    lease_store.finish(
        [Failed(job.lease, 1, 5, "PermanentError: no", "PermanentError", permanent=True)]
    )
    assert job_store.get(job_id).status is JobStatus.FAILED


def test_release_gives_the_attempt_back(job_store, lease_store):
    (job_id,) = job_store.enqueue([_new()])
    (job,) = lease_store.claim(None, 1, WORKER, 30)
    lease_store.finish([Released(job.lease)])
    record = job_store.get(job_id)
    assert (record.status, record.attempts) == (JobStatus.PENDING, 0)
    assert lease_store.claim(None, 1, WORKER, 30)[0].id == job_id


def test_expired_lease_is_retried_and_counts_an_attempt(job_store, lease_store, engine):
    (job_id,) = job_store.enqueue([_new(max_attempts=2)])
    (first,) = lease_store.claim(None, 1, WORKER, 30)
    assert lease_store.rescue_expired() == []
    _expire_leases(engine)
    (rescued,) = lease_store.rescue_expired()
    assert (rescued.job_id, rescued.attempt, rescued.status) == (job_id, 1, JobStatus.PENDING)
    record = job_store.get(job_id)
    assert record.error_type == "LeaseExpired" and record.lease_token is None
    # The first worker comes back late: its outcome is dropped.
    assert lease_store.finish([Succeeded(first.lease, "late")]) == [job_id]
    assert lease_store.heartbeat([first.lease], 30) == {job_id}
    (second,) = _claim_when_ready(lease_store)
    assert second.attempt == 2
    _expire_leases(engine)
    (rescued,) = lease_store.rescue_expired()
    assert rescued.status is JobStatus.FAILED
    assert job_store.get(job_id).status is JobStatus.FAILED


def test_heartbeat_extends_live_leases_and_reports_cancelled_ones(job_store, lease_store):
    ids = job_store.enqueue([_new(), _new()])
    claimed = lease_store.claim(None, 2, WORKER, 1)
    before = job_store.get(ids[0]).lease_expires_at
    job_store.cancel(ids[1])
    lost = lease_store.heartbeat([job.lease for job in claimed], 60)
    assert lost == {ids[1]}
    assert job_store.get(ids[0]).lease_expires_at > before + timedelta(seconds=30)
    assert job_store.get(ids[1]).status is JobStatus.CANCELLED


def test_cancelled_running_job_drops_its_outcome(job_store, lease_store):
    (job_id,) = job_store.enqueue([_new()])
    (job,) = lease_store.claim(None, 1, WORKER, 30)
    job_store.cancel(job_id)
    assert lease_store.finish([Succeeded(job.lease, 1)]) == [job_id]
    assert job_store.get(job_id).status is JobStatus.CANCELLED


def test_concurrent_claims_never_hand_out_a_job_twice(job_store, lease_store):
    job_store.enqueue([_new() for _ in range(200)])
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all():
        while True:
            jobs = lease_store.claim(None, 7, WORKER, 30)
            if not jobs:
                return
            with lock:
                claimed.extend(job.id for job in jobs)

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(1, 201))


@pytest.mark.parametrize("limit", [0, -1])
def test_claim_of_nothing_is_nothing(lease_store, job_store, limit):
    job_store.enqueue([_new()])
    assert lease_store.claim(None, limit, WORKER, 30) == []


def test_one_flush_completes_each_job_by_its_own_lease(job_store, lease_store):
    ids = job_store.enqueue([_new() for _ in range(4)])
    claimed = lease_store.claim(None, 4, WORKER, 30)
    job_store.cancel(ids[1])  # its lease is gone before the flush
    results = [{"n": 1}, "text", [1, 2.5, None], None]
    outcomes = [Succeeded(job.lease, result) for job, result in zip(claimed, results, strict=True)]
    outcomes[2] = Succeeded(Lease(ids[2], "not-the-token"), [0])  # a stale lease
    assert sorted(lease_store.finish(outcomes)) == [ids[1], ids[2]]
    records = [job_store.get(job_id) for job_id in ids]
    assert [r.status for r in records] == [
        JobStatus.DONE,
        JobStatus.CANCELLED,
        JobStatus.RUNNING,
        JobStatus.DONE,
    ]
    assert (records[0].result, records[3].result) == ({"n": 1}, None)
    assert records[2].result is None and records[2].lease_token == claimed[2].lease_token


@pytest.mark.parametrize("result", [0, 1.5, "", 'a "quoted" string', True, [], {"a": {"b": []}}])
def test_every_json_result_is_stored_as_given(job_store, lease_store, result):
    (job_id,) = job_store.enqueue([_new()])
    (job,) = lease_store.claim(None, 1, WORKER, 30)
    assert lease_store.finish([Succeeded(job.lease, result)]) == []
    assert job_store.get(job_id).result == result


def test_a_flush_mixes_successes_failures_and_releases(job_store, lease_store):
    ids = job_store.enqueue([_new(max_attempts=1) for _ in range(3)])
    done, failed, released = lease_store.claim(None, 3, WORKER, 30)
    outcomes = [
        Released(released.lease),
        Succeeded(done.lease, 7),
        Failed(failed.lease, 1, 1, "RuntimeError: boom", "RuntimeError"),
    ]
    assert lease_store.finish(outcomes) == []
    statuses = {job_id: job_store.get(job_id).status for job_id in ids}
    assert statuses == {
        done.id: JobStatus.DONE,
        failed.id: JobStatus.FAILED,
        released.id: JobStatus.PENDING,
    }


def test_enqueue_returns_ids_in_the_order_given(job_store):
    jobs = [_new(payload={"i": i}, priority=i % 3) for i in range(250)]
    ids = job_store.enqueue(jobs)
    assert ids == sorted(ids) and len(set(ids)) == 250
    assert [job_store.get(job_id).payload["i"] for job_id in ids[::25]] == list(range(0, 250, 25))
