"""The claim under queue limits, against a real database: concurrency, rate, pause."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import select, text, update

from jobsvc.models import Job, JobStatus, Queue
from jobsvc.retry import RetryPolicy
from jobsvc.store import LeaseStore, NewJob, QueueStore, RateLimit, Succeeded
from jobsvc.store.execute import Executor
from jobsvc.store.leases import CONCURRENCY_RECHECK_SECONDS
from tests.support.waiting import wait_until

WORKER = "test-worker"
jobs = Job.__table__
queues = Queue.__table__
CLAIMERS = 6


def _new(queue: str) -> NewJob:
    return NewJob(type="test.echo", payload={}, queue=queue, priority=0, max_attempts=3)


@pytest.fixture
def queue_store(engine) -> QueueStore:
    return QueueStore(engine)


def _lease_store(engine) -> LeaseStore:
    return LeaseStore(engine, RetryPolicy(0.01, 0.01, random.Random(1)))


def test_claimers_racing_never_exceed_the_concurrency(engine, job_store, queue_store):
    job_store.enqueue([_new("limited") for _ in range(40)])
    queue_store.configure("limited", concurrency=3)
    stores = [_lease_store(engine) for _ in range(CLAIMERS)]
    claimed: list[int] = []
    start = threading.Barrier(CLAIMERS)

    def claim(store: LeaseStore) -> None:
        start.wait()
        for _ in range(5):
            claimed.extend(job.id for job in store.claim(["limited"], 8, WORKER, 30))

    threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 3
    assert queue_store.get("limited").running == 3


def test_a_finished_attempt_makes_room_and_a_full_queue_says_when_to_look(
    engine, job_store, queue_store, lease_store
):
    job_store.enqueue([_new("limited") for _ in range(5)])
    queue_store.configure("limited", concurrency=2)
    first = lease_store.claim(["limited"], 8, WORKER, 30)
    assert len(first) == 2 and first.retry_after_seconds == CONCURRENCY_RECHECK_SECONDS
    assert lease_store.claim(["limited"], 8, WORKER, 30) == []
    lease_store.finish([Succeeded(first[0].lease, None)])
    assert len(lease_store.claim(["limited"], 8, WORKER, 30)) == 1


def test_the_rate_limit_counts_starts_in_a_fixed_window(
    engine, job_store, queue_store, lease_store
):
    job_store.enqueue([_new("rated") for _ in range(10)])
    queue_store.configure("rated", rate_limit=RateLimit(3, 60.0))
    claimed = lease_store.claim(["rated"], 2, WORKER, 30)
    claimed += lease_store.claim(["rated"], 8, WORKER, 30)
    assert len(claimed) == 3
    held = lease_store.claim(["rated"], 8, WORKER, 30)
    assert held == [] and 55 < held.retry_after_seconds <= 60
    with engine.begin() as connection:  # the window's minute passes
        connection.execute(
            text(
                "UPDATE queues SET window_started_at = window_started_at - 61 WHERE name = 'rated'"
            )
            if engine.dialect.name == "sqlite"
            else text(
                "UPDATE queues SET window_started_at = window_started_at - interval '61 seconds'"
            )
        )
    assert len(lease_store.claim(["rated"], 8, WORKER, 30)) == 3


def test_a_paused_queue_is_not_claimed_and_others_are(engine, job_store, queue_store):
    paused = job_store.enqueue([_new("paused")])
    other = job_store.enqueue([_new("other")])
    queue_store.set_paused("paused", True)
    store = _lease_store(engine)
    assert [job.id for job in store.claim(None, 8, WORKER, 30)] == other
    assert store.claim(["paused"], 8, WORKER, 30) == []
    queue_store.set_paused("paused", False)
    store.forget_queue_limits()
    assert [job.id for job in store.claim(["paused"], 8, WORKER, 30)] == paused


def test_a_worker_of_every_queue_keeps_limited_queues_to_their_limit(
    engine, job_store, queue_store
):
    job_store.enqueue([_new("limited") for _ in range(5)] + [_new("free") for _ in range(5)])
    queue_store.configure("limited", concurrency=1)
    claimed = _lease_store(engine).claim(None, 20, WORKER, 30)
    assert sorted(job.queue for job in claimed) == ["free"] * 5 + ["limited"]


def test_a_pause_reaches_a_worker_that_read_the_limits_before_it(
    engine, job_store, queue_store, lease_store
):
    lease_store.claim(None, 1, WORKER, 30)  # reads the (empty) limits
    job_store.enqueue([_new("emails")])
    queue_store.set_paused("emails", True)
    lease_store.forget_queue_limits()  # what QUEUE_SETTINGS_SECONDS passing does
    assert lease_store.claim(None, 8, WORKER, 30) == []
    assert queue_store.get("emails").counts[JobStatus.PENDING] == 1


def test_a_claim_waits_for_a_claim_of_the_same_queue_in_flight(engine, job_store, queue_store):
    # The race the queue row's lock closes: another claim has counted the room and taken it,
    # but not committed yet; a claim that did not wait would see no running attempt.
    ids = job_store.enqueue([_new("limited") for _ in range(6)])
    queue_store.configure("limited", concurrency=3)
    store = _lease_store(engine)
    store.claim(["other"], 1, WORKER, 30)  # reads the limits before the lock is held
    claimed: list[int] = []
    with Executor(engine).write() as transaction:
        transaction.execute(
            select(queues.c.name).where(queues.c.name == "limited").with_for_update()
        )
        transaction.execute(
            update(jobs).where(jobs.c.id.in_(ids[:3])).values(status=JobStatus.RUNNING)
        )
        thread = threading.Thread(
            target=lambda: claimed.extend(store.claim(["limited"], 8, WORKER, 30))
        )
        thread.start()
        if engine.dialect.name == "postgresql":
            wait_until(lambda: _waiting_for_a_lock(engine), message="the claim did not wait")
    thread.join()
    assert claimed == []  # it counted the three running once the other claim committed


def _waiting_for_a_lock(engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
        ).scalar_one()
    return waiting > 0
