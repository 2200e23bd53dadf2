"""Scenario 2: a worker is SIGSTOPped past its lease, then resumed; everything it writes late is
fenced out, and another worker finishes each job once."""

from __future__ import annotations

import time

from .conftest import FaultService, size
from .scenario import wait_for

JOBS = size(3, 12)
LEASE_SECONDS = 1.5
LEASE = {"JOBSVC_LEASE_SECONDS": str(LEASE_SECONDS), "JOBSVC_HEARTBEAT_SECONDS": "0.3"}
WORK_SECONDS = 1.0


def test_paused_worker_writes_nothing_after_resuming(faulty: FaultService) -> None:
    faulty.start_api()
    paused = faulty.start_worker("--concurrency", str(JOBS), **LEASE)
    ids = [faulty.post({"type": "test.work", "payload": {"seconds": WORK_SECONDS},
                        "max_attempts": 3}) for _ in range(JOBS)]
    wait_for(lambda: len([e for e in faulty.executions() if e["event"] == "start"]) == JOBS)
    faulty.pause(paused)
    time.sleep(LEASE_SECONDS + 1.0)  # well past the lease
    rescuer = faulty.start_worker("--concurrency", str(JOBS), **LEASE)
    wait_for(lambda: all(faulty.row(i)["status"] == "DONE" for i in ids), timeout=60)
    before = {i: faulty.row(i) for i in ids}

    faulty.resume(paused)
    log = faulty.log_of[paused.pid]
    wait_for(lambda: log.read_text().count("lease lost job_id=") >= JOBS, timeout=30)
    time.sleep(1.0)  # room for any late heartbeat or outcome write to land, if it could

    assert {i: faulty.row(i) for i in ids} == before  # fencing: not one column changed
    for job_id in ids:
        row = before[job_id]
        assert row["attempts"] == 2
        assert row["locked_by"].split(":")[1] == str(rescuer.pid)
    late = [e for e in faulty.executions() if e["pid"] == paused.pid and e["event"] == "end"]
    assert paused.poll() is None  # the resumed worker survived its lost leases
    faulty.check("pause", late_outcomes_fenced=len(late))
