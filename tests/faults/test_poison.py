"""Scenario 5: a job whose handler kills its worker on every attempt ends FAILED after
max_attempts with a clear last_error, while other jobs keep flowing."""

from __future__ import annotations

from .scenario import poison_amid_bystanders
from .service import FaultService, size

LEASE = {"JOBSVC_LEASE_SECONDS": "1.5", "JOBSVC_HEARTBEAT_SECONDS": "0.3"}
MAX_ATTEMPTS = 3
SLOTS = 2  # per worker
STREAM_EVERY_SECONDS = size(0.3, 0.1)
SETTLE_TIMEOUT_SECONDS = 90


def test_poison_job_fails_after_max_attempts_and_others_flow(faulty: FaultService) -> None:
    faulty.start_api()
    for _ in range(2):
        faulty.start_worker("--concurrency", str(SLOTS), **LEASE)
    faulty.supervise()
    poison = faulty.post({"type": "test.kill_self", "max_attempts": MAX_ATTEMPTS})
    row, others, flowed = poison_amid_bystanders(
        faulty, poison, every_seconds=STREAM_EVERY_SECONDS, timeout=SETTLE_TIMEOUT_SECONDS
    )
    assert row["status"] == "FAILED" and row["attempts"] == MAX_ATTEMPTS
    assert row["error_type"] == "LeaseExpired"
    assert "lease expired" in row["last_error"] and "died" in row["last_error"]
    statuses = faulty.statuses()
    # A job claimed into the same process as the poison job dies with it and spends an attempt
    # each time; with 2 slots and 3 poison attempts at most one other job can run out of them.
    collateral = [i for i in others if statuses[i] != "DONE"]
    assert len(collateral) <= SLOTS - 1
    for job_id in collateral:
        assert faulty.row(job_id)["error_type"] == "LeaseExpired"
    assert flowed  # jobs finished while the poison job was still being retried
    faulty.check(
        "poison",
        worker_deaths=len(faulty.faults.died),
        done_meanwhile=len(flowed),
        collateral_failed=len(collateral),
    )
