"""OverviewStore: the ready backlog, throughput by minute and busy workers, on both engines."""

from __future__ import annotations

import time

from jobsvc.store import NewJob, OverviewStore, Succeeded
from jobsvc.store.outcomes import failed


def _job(queue: str = "default", **fields) -> NewJob:
    return NewJob(type="t", queue=queue, payload={}, priority=0, max_attempts=1, **fields)


def test_finished_jobs_are_counted_in_the_current_minute(engine, job_store, lease_store):
    job_store.enqueue([_job(), _job(), _job()])
    claimed = lease_store.claim(None, 3, "w1", 30.0)
    lease_store.finish(
        [
            Succeeded(claimed[0].lease, None),
            Succeeded(claimed[1].lease, None),
            failed(claimed[2], RuntimeError("boom"), permanent=True, traceback_limit=100),
        ]
    )
    now_minute, minutes = OverviewStore(engine).finished_per_minute(60)
    assert abs(now_minute - int(time.time() // 60)) <= 1
    assert sum(m.done for m in minutes) == 2
    assert sum(m.failed for m in minutes) == 1
    assert all(now_minute - 60 < m.minute <= now_minute for m in minutes)


def test_ready_queues_and_busy_workers(engine, job_store, lease_store):
    job_store.enqueue([_job("mail"), _job("mail"), _job("sms")])
    lease_store.claim(["sms"], 1, "w7", 30.0)
    overview = OverviewStore(engine)
    ready = {entry.queue: entry for entry in overview.ready_queues()}
    assert set(ready) == {"mail"} and ready["mail"].ready == 2
    assert 0 <= ready["mail"].oldest_age_seconds < 60
    (busy,) = overview.busy_workers()
    assert (busy.worker, busy.running) == ("w7", 1)
