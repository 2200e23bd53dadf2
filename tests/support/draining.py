"""Draining: run the worker loop in-process until the given jobs are terminal."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.engine import Engine

import tests.handlers  # noqa: F401 - registers the test handlers the jobs name
from jobsvc.models import JobStatus
from jobsvc.registry import registry
from jobsvc.retry import RetryPolicy
from jobsvc.store import JobRecord, JobStore, LeaseStore, open_waker
from worker.runner import Runner, WorkerSettings

from .waiting import wait_until

DRAIN_TIMEOUT_SECONDS = 15.0
FINISHED = (JobStatus.DONE, JobStatus.FAILED)


def worker_settings(**overrides: Any) -> WorkerSettings:
    """Return fast burst-mode worker settings, with ``overrides`` applied."""
    fields = {
        "queues": None,
        "concurrency": 2,
        "burst": True,
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.2,
        "poll_seconds": 0.05,
        "shutdown_grace_seconds": 2.0,
        "traceback_bytes": 4096,
        **overrides,
    }
    return WorkerSettings(**fields)


def burst_runner(engine: Engine, **overrides: Any) -> Runner:
    """Return an in-process worker on ``engine`` that exits once nothing is ready."""
    store = LeaseStore(engine, RetryPolicy(0.01, 0.05, random.Random(3)))
    return Runner(store, open_waker(engine), registry, worker_settings(**overrides))


def drain(
    engine: Engine,
    job_store: JobStore,
    ids: list[int],
    timeout: float = DRAIN_TIMEOUT_SECONDS,
    **overrides: Any,
) -> list[JobRecord]:
    """Run burst workers until every job in ``ids`` is DONE or FAILED; return their records."""

    def finished() -> list[JobRecord] | None:
        burst_runner(engine, **overrides).run()
        records = [job_store.get(job_id) for job_id in ids]
        return records if all(r.status in FINISHED for r in records) else None

    return wait_until(finished, timeout=timeout, message=f"jobs did not finish: {ids[:10]}")
