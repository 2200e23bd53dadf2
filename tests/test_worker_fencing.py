"""Self-fencing in-process: a worker that cannot renew a lease stops the handler before it
expires, so the attempt is gone by the time another worker may rescue the job."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine

from jobsvc.errors import DatabaseUnavailable
from jobsvc.models import JobStatus
from jobsvc.registry import HandlerRegistry
from jobsvc.retry import RetryPolicy
from jobsvc.store import LeaseStore, NewJob
from jobsvc.store.engine import configure_engine, engine_options
from tests.support.waiting import wait_until
from worker import JobContext
from worker.events import Events
from worker.executor import Executor
from worker.fencing import Fence, fence_after
from worker.maintenance import Maintenance

LEASE_SECONDS = 2.0
HEARTBEAT_SECONDS = 0.2
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=1"


ENDS: list[tuple[float, str]] = []  # (when, how) of each stubborn attempt that ended


def stubborn(payload: dict, ctx: JobContext) -> None:
    """Work in short steps, never looking at ctx; note when and how it ended."""
    how = "returned"
    try:
        deadline = time.monotonic() + float(payload["seconds"])
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except BaseException as exc:
        how = type(exc).__name__
        raise
    finally:
        ENDS.append((time.time(), how))


# A registry of this module's own: the global one also feeds the served OpenAPI document.
handlers = HandlerRegistry()
handlers.register("fence.stubborn", stubborn)


class Reports:
    def __init__(self) -> None:
        self.items: list = []

    def put(self, report) -> None:
        self.items.append(report)


@pytest.fixture
def store(engine) -> LeaseStore:
    return LeaseStore(engine, RetryPolicy(0.01, 0.05, random.Random(3)))


@pytest.fixture
def executor():
    ENDS.clear()
    executor = Executor(2, handlers, 4096, Reports(), Events("w"), threading.Event())
    yield executor
    executor.close()


def _running(job_store, store, executor, job_type: str = "fence.stubborn"):
    job_store.enqueue(
        [NewJob(type=job_type, payload={"seconds": 30}, queue="q", priority=0, max_attempts=3)]
    )
    (job,) = store.claim(None, 1, "w", LEASE_SECONDS)
    executor.start(job)
    wait_until(lambda: executor.in_flight()[0].started is not None)
    return job


def test_the_fence_lands_before_the_lease_expires_leaving_a_heartbeat_to_try():
    assert fence_after(30.0, 10.0) == 25.0  # the defaults: after two missed heartbeats
    assert fence_after(LEASE_SECONDS, HEARTBEAT_SECONDS) == pytest.approx(1.8)
    assert fence_after(10.0, 0.5) == 9.0  # 10 % of the lease at least


def test_an_attempt_whose_lease_was_not_renewed_is_stopped_in_time(job_store, store, executor):
    fence = Fence(
        executor, Events("w"), lease_seconds=LEASE_SECONDS, heartbeat_seconds=HEARTBEAT_SECONDS
    )
    job = _running(job_store, store, executor)
    sent = time.monotonic()
    fence.renewed([job.id], sent)
    fence.check(sent + 1.7)
    assert executor.busy()  # not due yet
    fence.renewed([job.id], sent + 1.0)  # a heartbeat got through: the deadline moves
    fence.check(sent + 1.9)
    assert executor.busy()
    fence.check(sent + 2.81)
    assert not executor.busy()
    assert job_store.get(job.id).status is JobStatus.RUNNING  # left for a rescue, not written


def test_with_the_database_unreachable_the_handler_stops_before_its_lease_expires(
    job_store, store, executor
):
    fence = Fence(
        executor, Events("w"), lease_seconds=LEASE_SECONDS, heartbeat_seconds=HEARTBEAT_SECONDS
    )
    away = create_engine(UNREACHABLE_URL, **engine_options(UNREACHABLE_URL))
    configure_engine(away)
    unreachable = LeaseStore(away, RetryPolicy(0.01, 0.05, random.Random(3)))
    maintenance = Maintenance(
        unreachable,
        executor,
        Reports(),
        Events("w"),
        lease_seconds=LEASE_SECONDS,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        fence=fence,
        cancel_check_seconds=0.5,
        cancel_grace_seconds=5.0,
    )
    sent = time.monotonic()
    job = _running(job_store, store, executor)
    maintenance.leased([job.id], sent)
    fence.start()
    try:
        while executor.busy():
            with pytest.raises(DatabaseUnavailable):
                maintenance.run_due()  # every heartbeat fails
            time.sleep(HEARTBEAT_SECONDS)
    finally:
        fence.close()
    wait_until(lambda: ENDS)
    ((ended, how),) = ENDS
    assert how == "LeaseUnrenewed"
    expires = job_store.get(job.id).lease_expires_at
    assert datetime.fromtimestamp(ended, UTC) < expires  # stopped while the lease still held
