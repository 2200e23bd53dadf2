"""Scenario 1: workers are SIGKILLed at random while they drain a backlog, and restarted."""

from __future__ import annotations

import random
import threading
import time

from .service import FaultService, size

WORKERS = 4
CONCURRENCY = "4"
JOBS = size(300, 5000)
KILL_EVERY_SECONDS = size(1.5, 1.0)  # the full drain takes about 9 s: several kills
WORK_SECONDS = size(0.2, 0.02)  # small: the drain outlasts several kills
SETTLE_TIMEOUT_SECONDS = size(90, 600)
LEASE = {"JOBSVC_LEASE_SECONDS": "2", "JOBSVC_HEARTBEAT_SECONDS": "0.4"}


def test_killed_workers_lose_nothing_and_never_overlap(faulty: FaultService) -> None:
    faulty.start_api()
    faulty.enqueue(
        [
            {"type": "test.work", "payload": {"seconds": WORK_SECONDS}, "max_attempts": 10}
            for _ in range(JOBS)
        ]
    )
    for _ in range(WORKERS):
        faulty.start_worker("--concurrency", CONCURRENCY, **LEASE)
    faulty.supervise()
    done = threading.Event()
    killer = faulty.kill_randomly(KILL_EVERY_SECONDS, done, random.Random(4))
    started = time.monotonic()
    faulty.wait_settled(SETTLE_TIMEOUT_SECONDS)
    done.set()
    killer.join()
    counters = faulty.check(
        "kill", kills=len(faulty.faults.died), seconds=round(time.monotonic() - started, 1)
    )
    assert len(faulty.faults.died) >= 2  # the scenario really killed workers
    assert counters.executions >= JOBS
