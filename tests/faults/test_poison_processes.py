"""Scenario 5b: the poison job of scenario 5 under ``--pool processes``. Its handler kills the
process it runs in on every attempt; there that is a child, so the worker, its heartbeats and
the jobs on its other children go on: the poison job ends FAILED after max_attempts with
WorkerProcessDied, and no other job spends an attempt on it."""

from __future__ import annotations

from tests.support.settings import slow_e2e_backends

from .scenario import poison_amid_bystanders
from .service import FaultService, size

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("sqlite")

LEASE = {"JOBSVC_LEASE_SECONDS": "1.5", "JOBSVC_HEARTBEAT_SECONDS": "0.3"}
MAX_ATTEMPTS = 3
CHILDREN = 2  # per worker
STREAM_EVERY_SECONDS = size(0.3, 0.1)
SETTLE_TIMEOUT_SECONDS = 90


def test_poison_job_under_processes_costs_bystanders_nothing(faulty: FaultService) -> None:
    faulty.start_api()
    for _ in range(2):
        faulty.start_worker("--pool", "processes", "--concurrency", str(CHILDREN), **LEASE)
    faulty.supervise()
    poison = faulty.post({"type": "test.kill_self", "max_attempts": MAX_ATTEMPTS})
    row, others, flowed = poison_amid_bystanders(
        faulty, poison, every_seconds=STREAM_EVERY_SECONDS, timeout=SETTLE_TIMEOUT_SECONDS
    )
    assert row["status"] == "FAILED" and row["attempts"] == MAX_ATTEMPTS
    assert row["error_type"] == "WorkerProcessDied" and "SIGKILL" in row["last_error"]
    statuses = faulty.statuses()
    collateral = [i for i in others if statuses[i] != "DONE" or faulty.row(i)["attempts"] != 1]
    assert collateral == []  # only the poison job's own child died
    assert not faulty.faults.died and all(w.poll() is None for w in faulty.live_workers())
    faulty.check(
        "poison_processes",
        worker_deaths=len(faulty.faults.died),
        done_meanwhile=len(flowed),
        collateral_failed=len(collateral),
    )
