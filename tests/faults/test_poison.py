"""Scenario 5: a job whose handler kills its worker on every attempt ends FAILED after
max_attempts with a clear last_error, while other jobs keep flowing."""

from __future__ import annotations

import threading

from tests.support.waiting import poll_until

from .scenario import epoch
from .service import FaultService, size

LEASE = {"JOBSVC_LEASE_SECONDS": "1.5", "JOBSVC_HEARTBEAT_SECONDS": "0.3"}
MAX_ATTEMPTS = 3
SLOTS = 2  # per worker
STREAM_EVERY_SECONDS = size(0.3, 0.1)
STREAM_BATCH = 5
SETTLE_TIMEOUT_SECONDS = 90


def test_poison_job_fails_after_max_attempts_and_others_flow(faulty: FaultService) -> None:
    faulty.start_api()
    for _ in range(2):
        faulty.start_worker("--concurrency", str(SLOTS), **LEASE)
    faulty.supervise()
    poison = faulty.post({"type": "test.kill_self", "max_attempts": MAX_ATTEMPTS})
    stop = threading.Event()

    def stream() -> None:
        while not stop.wait(STREAM_EVERY_SECONDS):
            faulty.enqueue([{"type": "test.work", "payload": {"seconds": 0.02}}] * STREAM_BATCH)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    poll_until(
        lambda: faulty.row(poison)["status"] == "FAILED",
        timeout=SETTLE_TIMEOUT_SECONDS,
        interval=0.1,
    )
    stop.set()
    streamer.join()
    faulty.wait_settled(SETTLE_TIMEOUT_SECONDS)

    row = faulty.row(poison)
    assert row["status"] == "FAILED" and row["attempts"] == MAX_ATTEMPTS
    assert row["error_type"] == "LeaseExpired"
    assert "lease expired" in row["last_error"] and "died" in row["last_error"]
    others = [i for i in faulty.accepted if i != poison]
    statuses = faulty.statuses()
    # A job claimed into the same process as the poison job dies with it and spends an attempt
    # each time; with 2 slots and 3 poison attempts at most one other job can run out of them.
    collateral = [i for i in others if statuses[i] != "DONE"]
    assert len(collateral) <= SLOTS - 1
    for job_id in collateral:
        assert faulty.row(job_id)["error_type"] == "LeaseExpired"
    poison_failed = epoch(row["finished_at"])
    flowed = [i for i in others if epoch(faulty.row(i)["finished_at"]) < poison_failed]
    assert flowed  # jobs finished while the poison job was still being retried
    faulty.check(
        "poison",
        worker_deaths=len(faulty.faults.died),
        done_meanwhile=len(flowed),
        collateral_failed=len(collateral),
    )
