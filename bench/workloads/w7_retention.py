"""W7: the drain rate as finished rows pile up, and while retention deletes them.

Each case seeds ``finished`` DONE rows (finished eight days ago, past the default seven-day
retention) with set-based SQL, then drains a backlog of no-op jobs as a worker's hot loop does
(claim 100 per transaction, complete them), several times over, so the drained jobs become
finished rows too. In the last case a thread prunes as the workers' retention does meanwhile:
batches of 1,000 old DONE jobs, five per pass, a pass each half second while a batch was full.
"""

from __future__ import annotations

import threading
import time

from jobsvc.models import JobStatus
from jobsvc.store import Succeeded
from jobsvc.store.housekeeping import HousekeepingStore
from worker.housekeeping import PRUNE_BATCH, PRUNE_BATCHES_PER_PASS, RETENTION_BUSY_PASS_SECONDS

from ..report import median
from ..seed import bulk_rows, enqueue_noops
from ..verify import done_exactly_once
from . import LEASE_SECONDS, QUEUES, Run

BATCH = 100
WORKER_ID = "bench-w7"
FINISHED_AGO_SECONDS = 8 * 86_400.0
RETAIN_SECONDS = 7 * 86_400.0  # JOBSVC_RETAIN_DONE_SECONDS's default


def run(bench: Run) -> None:
    """Drain with 0, then more finished rows; the last case with pruning running."""
    sizes = bench.sizes
    empty = _measure(bench, 0, pruning=False)
    for finished in sizes.w7_finished:
        pruning = finished == sizes.w7_finished[-1]
        rate = _measure(bench, finished, pruning=pruning)
        case = f"{finished:,} finished rows{' + pruning' if pruning else ''}"
        bench.add("W7", f"{case} / empty", "drain rate", rate / empty, "x")


def _measure(bench: Run, finished: int, *, pruning: bool) -> float:
    bench.database.reset()
    if finished:
        bulk_rows(
            bench.database, finished, finished=True, finished_ago_seconds=FINISHED_AGO_SECONDS
        )
    stop = threading.Event()
    pruned = [0]
    pruner = threading.Thread(target=_prune, args=(bench, stop, pruned), daemon=True)
    if pruning:
        pruner.start()
    _drain(bench)  # warm the caches and the connection pool; not counted
    rates = []
    try:
        for _ in range(bench.sizes.w7_rounds):
            rates.append(_drain(bench))
    finally:
        stop.set()
        if pruning:
            pruner.join()
    case = f"{bench.sizes.w7_ready:,} jobs, {finished:,} finished rows"
    if pruning:
        case += f" + pruning ({pruned[0]:,} deleted meanwhile)"
    rate = median(rates)
    bench.add("W7", case, f"drain (100/tx) median/{len(rates)}", rate, "jobs/s")
    return rate


def _drain(bench: Run) -> float:
    ids = enqueue_noops(bench.database, bench.sizes.w7_ready)
    store = bench.lease_store()
    done: list[int] = []
    start = time.perf_counter()
    while True:
        claimed = store.claim(QUEUES, BATCH, WORKER_ID, LEASE_SECONDS)
        if not claimed:
            break
        store.finish([Succeeded(job.lease, None) for job in claimed])
        done.extend(job.id for job in claimed)
    elapsed = time.perf_counter() - start
    done_exactly_once(bench.database, ids, "W7")
    return len(done) / elapsed


def _prune(bench: Run, stop: threading.Event, pruned: list[int]) -> None:
    store = HousekeepingStore(bench.database.engine)
    while not stop.is_set():
        for _ in range(PRUNE_BATCHES_PER_PASS):
            deleted = store.prune(JobStatus.DONE, RETAIN_SECONDS, PRUNE_BATCH) or 0
            pruned[0] += deleted
            if deleted < PRUNE_BATCH:
                return
        stop.wait(RETENTION_BUSY_PASS_SECONDS)
