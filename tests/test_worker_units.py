"""The worker's units one at a time, on a real database: executor, maintenance, shutdown, fetch."""

from __future__ import annotations

import random
import threading
import time

import pytest

import tests.handlers  # noqa: F401 - registers the test handlers
from jobsvc.models import JobStatus
from jobsvc.registry import registry
from jobsvc.retry import RetryPolicy
from jobsvc.store import Failed, LeaseStore, NewJob, Released, Succeeded, open_waker
from worker.completer import Report
from worker.events import Events
from worker.executor import Executor
from worker.fencing import Fence
from worker.fetcher import FetchLoop
from worker.maintenance import Maintenance
from worker.shutdown import Shutdown, StopFlag

WAIT_SECONDS = 10.0


class Reports:
    """Where the executor and maintenance put outcomes: kept in memory for the test to read."""

    def __init__(self) -> None:
        self.items: list[Report] = []

    def put(self, report: Report) -> None:
        self.items.append(report)


def _wait_for(predicate, timeout=WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def store(engine) -> LeaseStore:
    return LeaseStore(engine, RetryPolicy(0.01, 0.05, random.Random(3)))


@pytest.fixture
def parts(store):
    """An executor and maintenance on 2 slots, their reports kept by ``Reports``."""
    reports, wake = Reports(), threading.Event()
    executor = Executor(2, registry, 4096, reports, Events("w"), wake)
    fence = Fence(executor, Events("w"), lease_seconds=2.0, heartbeat_seconds=0.2)
    maintenance = Maintenance(
        store,
        executor,
        reports,
        Events("w"),
        lease_seconds=2.0,
        heartbeat_seconds=0.2,
        fence=fence,
        cancel_check_seconds=0.1,
        cancel_grace_seconds=0.5,
    )
    yield executor, maintenance, reports, wake
    executor.close()


def _claim(job_store, store, job_type, payload=None, **options):
    fields = {"queue": "default", "priority": 0, "max_attempts": 3, **options}
    job_store.enqueue([NewJob(type=job_type, payload=payload or {}, **fields)])
    (job,) = store.claim(None, 1, "w", 2.0)
    return job


def test_the_executor_runs_an_attempt_and_reports_it_once(job_store, store, parts):
    executor, _, reports, wake = parts
    job = _claim(job_store, store, "test.echo", {"n": 1})
    executor.start(job)
    assert executor.free() in (1, 2)
    _wait_for(lambda: reports.items and not executor.busy())
    (report,) = reports.items
    assert isinstance(report.outcome, Succeeded) and report.job == job
    assert report.outcome.result == {"echo": {"n": 1}, "attempt": 1} and report.duration >= 0
    assert wake.is_set() and executor.free() == 2


def test_maintenance_stops_an_attempt_past_its_timeout_and_frees_its_slot(job_store, store, parts):
    executor, maintenance, reports, _ = parts
    hung = _claim(job_store, store, "test.spin", timeout_seconds=0.1)
    executor.start(hung)
    _wait_for(lambda: executor.nearest_deadline())
    assert maintenance.next_due() <= executor.nearest_deadline()
    _wait_for(lambda: time.monotonic() >= executor.nearest_deadline())
    maintenance.run_due()
    (report,) = reports.items
    assert isinstance(report.outcome, Failed) and report.outcome.error_type == "JobTimeout"
    assert not report.outcome.is_final and not executor.busy()
    after = _claim(job_store, store, "test.echo")  # a fresh thread took the hung one's slot
    executor.start(after)
    _wait_for(lambda: len(reports.items) == 2)
    assert isinstance(reports.items[1].outcome, Succeeded)


def test_maintenance_stops_an_attempt_whose_lease_was_cancelled(job_store, store, parts):
    executor, maintenance, reports, _ = parts
    job = _claim(job_store, store, "test.work", {"seconds": 30})
    executor.start(job)
    _wait_for(lambda: executor.in_flight()[0].started is not None)
    job_store.cancel(job.id)
    maintenance.run_due()  # the handler is told; test.work then returns by itself
    _wait_for(lambda: not executor.busy())
    assert job_store.get(job.id).lease_token == job.lease_token  # not confirmed yet
    _wait_for(lambda: (maintenance.run_due(), job_store.get(job.id).lease_token)[1] is None)
    assert job_store.get(job.id).status is JobStatus.CANCELLED


def test_maintenance_rescues_an_expired_lease_of_another_worker(job_store, store, parts):
    _, maintenance, _, _ = parts
    job_store.enqueue([NewJob(type="t", payload={}, queue="default", priority=0, max_attempts=3)])
    (job,) = store.claim(None, 1, "dead-worker", 0.01)
    time.sleep(0.05)  # let the lease expire: the database's clock decides
    maintenance.run_due()
    record = job_store.get(job.id)
    assert (record.status, record.attempts) == (JobStatus.PENDING, 1)
    assert record.error_type == "LeaseExpired"


def test_shutdown_drains_then_releases_what_still_runs(job_store, store, parts):
    executor, maintenance, reports, wake = parts
    stop = StopFlag()
    shutdown = Shutdown(
        executor, maintenance, reports, Events("w"), grace_seconds=0.2, wake=wake, stop=stop
    )
    quick, slow = (_claim(job_store, store, "test.work", {"seconds": s}) for s in (0.05, 30))
    executor.start(quick)
    executor.start(slow)
    shutdown.request_stop()
    assert stop.is_set() and wake.is_set()
    began = time.monotonic()
    shutdown.drain()
    assert time.monotonic() - began >= 0.2
    kinds = {report.job.id: type(report.outcome) for report in reports.items}
    assert kinds == {quick.id: Succeeded, slow.id: Released}


def test_the_fetch_loop_claims_no_more_than_the_free_slots(engine, job_store, store, parts):
    executor, maintenance, reports, wake = parts
    job_store.enqueue(
        [
            NewJob(
                type="test.work",
                payload={"seconds": 30},
                queue="default",
                priority=0,
                max_attempts=3,
            )
            for _ in range(5)
        ]
    )
    stop, waker = StopFlag(), open_waker(engine)
    loop = FetchLoop(
        store,
        waker,
        executor,
        maintenance,
        queues=None,
        worker_id="w",
        lease_seconds=2.0,
        poll_seconds=0.05,
        burst=False,
        wake=wake,
        stop=stop,
    )
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        _wait_for(lambda: executor.free() == 0)
        time.sleep(0.2)  # several polls with no free slot
        assert len(executor.in_flight()) == 2
        assert job_store.counts()[("default", JobStatus.RUNNING)] == 2
        assert job_store.counts()[("default", JobStatus.PENDING)] == 3
    finally:
        stop.set()
        wake.set()
        thread.join(WAIT_SECONDS)
        loop.close()
        waker.close()
        for execution in executor.in_flight():
            execution.resolve()
            execution.context.stop_requested.set()
    assert not thread.is_alive()


def test_the_fetch_loop_in_burst_mode_ends_when_nothing_is_ready(engine, store, parts):
    executor, maintenance, _, wake = parts
    stop, waker = StopFlag(), open_waker(engine)
    loop = FetchLoop(
        store,
        waker,
        executor,
        maintenance,
        queues=("none",),
        worker_id="w",
        lease_seconds=2.0,
        poll_seconds=0.05,
        burst=True,
        wake=wake,
        stop=stop,
    )
    thread = threading.Thread(target=loop.run)
    thread.start()
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive()  # nothing was ready and nothing ran: it returned by itself
    stop.set()
    loop.close()
    waker.close()
