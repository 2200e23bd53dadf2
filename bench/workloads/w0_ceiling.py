"""W0: the claim-and-complete SQL driven from a tight loop, through the store and raw."""

from __future__ import annotations

import time
from collections.abc import Callable

from jobsvc.store import Succeeded

from ..seed import enqueue_noops
from ..verify import done_exactly_once
from . import LEASE_SECONDS, QUEUES, Run
from .raw_sql import raw_claimer

BATCH = 100
WORKER_ID = "bench-w0"


def run(bench: Run) -> None:
    """Measure claim + complete rate, one job and 100 jobs per transaction."""
    for per_transaction, count in (
        (1, bench.sizes.w0_single_jobs),
        (BATCH, bench.sizes.w0_batch_jobs),
    ):
        for label, cycle in (("LeaseStore", _store_cycle(bench)), ("raw SQL", None)):
            bench.database.reset()
            ids = set(enqueue_noops(bench.database, count))
            if cycle is None:
                with raw_claimer(bench.database) as raw_cycle:
                    elapsed, done = _drain(raw_cycle, per_transaction, count)
            else:
                elapsed, done = _drain(cycle, per_transaction, count)
            done_exactly_once(bench.database, done, f"W0 {label}")
            if set(done) != ids:
                raise AssertionError(f"W0 {label}: drained {len(done)} of {len(ids)} jobs")
            case = f"{label}, {per_transaction} job/tx"
            bench.add("W0", case, "jobs/s", len(done) / elapsed, "jobs/s")


def _store_cycle(bench: Run) -> Callable[[int], list[int]]:
    store = bench.lease_store()

    def cycle(limit: int) -> list[int]:
        claimed = store.claim(QUEUES, limit, WORKER_ID, LEASE_SECONDS)
        lost = store.finish([Succeeded(job.lease, None) for job in claimed])
        if lost:
            raise AssertionError(f"W0: leases lost without contention: {lost[:5]}")
        return [job.id for job in claimed]

    return cycle


def _drain(cycle: Callable[[int], list[int]], limit: int, count: int) -> tuple[float, list[int]]:
    done: list[int] = []
    start = time.perf_counter()
    # Bounded: one more round than the jobs need, in case a claim comes back short.
    for _ in range(count // limit + 1):
        ids = cycle(limit)
        if not ids:
            break
        done.extend(ids)
    return time.perf_counter() - start, done


def drain_with_store(bench: Run, count: int) -> list[int]:
    """Claim and complete up to ``count`` ready jobs through the store; return their ids."""
    return _drain(_store_cycle(bench), BATCH, count)[1]
