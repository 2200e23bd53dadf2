"""Scenario 7: a handler in an endless loop is stopped at its timeout and its slot is reused."""

from __future__ import annotations

from tests.support.settings import slow_e2e_backends

from .scenario import starts
from .service import FaultService, size

# Real worker processes; what differs by backend is the store, which the fast tests
# cover on both: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("sqlite")

TIMEOUT_SECONDS = 1.0
MAX_ATTEMPTS = 2
FOLLOWERS = size(5, 50)


def test_hung_handler_times_out_and_its_slot_runs_the_next_jobs(faulty: FaultService) -> None:
    faulty.start_api()
    worker = faulty.start_worker("--concurrency", "1")  # one slot: it must be reused
    hung = faulty.post(
        {
            "type": "test.spin",
            "timeout_seconds": TIMEOUT_SECONDS,
            "max_attempts": MAX_ATTEMPTS,
            "priority": 10,
        }
    )
    followers = faulty.enqueue([{"type": "test.work", "payload": {"seconds": 0}}] * FOLLOWERS)
    faulty.wait_settled(60)

    row = faulty.row(hung)
    assert row["status"] == "FAILED" and row["attempts"] == MAX_ATTEMPTS
    assert row["error_type"] == "JobTimeout"
    assert row["last_error"].startswith("JobTimeout: the job ran past its timeout of 1")
    statuses = faulty.statuses()
    assert all(statuses[i] == "DONE" for i in followers)
    assert worker.poll() is None
    assert {e["pid"] for e in starts(faulty.executions())} == {worker.pid}
    faulty.check("hung")
