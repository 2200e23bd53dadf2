"""Scenario 4: SIGTERM while jobs run: no new claims, short jobs finish within the grace period,
long ones are released (the attempt does not count) and retried at once elsewhere; exit 0."""

from __future__ import annotations

import time

from tests.support.settings import slow_e2e_backends

from .scenario import epoch, starts, wait_for
from .service import FaultService, size

# Backend-independent at this size: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

GRACE_SECONDS = 2.0
SHORT_SECONDS = 0.8
LONG_SECONDS = GRACE_SECONDS + 2.0
PAIRS = size(2, 4)
EXIT_SLACK_SECONDS = 3.0  # process exit after the grace period, on a busy machine
PROMPT_SECONDS = 5.0  # a released job is claimed by a running worker within this


def test_sigterm_finishes_short_jobs_and_releases_long_ones(faulty: FaultService) -> None:
    faulty.start_api()
    env = {"JOBSVC_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
    stopping = faulty.start_worker("--concurrency", str(2 * PAIRS), **env)
    short = [
        faulty.post({"type": "test.work", "payload": {"seconds": SHORT_SECONDS}, "priority": 10})
        for _ in range(PAIRS)
    ]
    long = [
        faulty.post({"type": "test.work", "payload": {"seconds": LONG_SECONDS}, "priority": 5})
        for _ in range(PAIRS)
    ]
    wait_for(lambda: len(starts(faulty.executions())) == 2 * PAIRS)

    signalled = time.time()
    faulty.terminate(stopping)
    late = [faulty.post({"type": "test.work", "payload": {"seconds": 0}}) for _ in range(3)]
    assert stopping.wait(GRACE_SECONDS + EXIT_SLACK_SECONDS) == 0
    exited = time.time()

    assert not [e for e in starts(faulty.executions(), pid=stopping.pid) if e["t"] > signalled]
    for job_id in short:
        row = faulty.row(job_id)
        assert row["status"] == "DONE" and row["attempts"] == 1
    for job_id in long + late:
        row = faulty.row(job_id)
        assert row["status"] == "PENDING" and row["attempts"] == 0, row  # released: not counted
        assert epoch(row["run_at"]) <= exited + 0.5  # ready at once, no backoff

    successor = faulty.start_worker("--concurrency", str(2 * PAIRS), **env)
    wait_for(
        lambda: len(starts(faulty.executions(), pid=successor.pid)) >= len(long) + 3,
        timeout=PROMPT_SECONDS + 30,
    )  # the successor's start-up is most of this
    faulty.wait_settled(LONG_SECONDS + 30)
    for job_id in long:
        assert faulty.row(job_id)["attempts"] == 1  # the released attempt did not count
    faulty.check("graceful_stop", stop_seconds=round(exited - signalled, 2))
