"""W7: the drain rate as finished rows pile up, and while retention deletes them.

Each case seeds ``finished`` DONE rows (finished eight days ago, past the default seven-day
retention) with set-based SQL, then drains a backlog of no-op jobs as a worker's hot loop does
(claim 100 per transaction, complete them), several times over, so the drained jobs become
finished rows too. The last size is drained again while a thread runs the workers' own
retention chore (``worker.housekeeping.Retention``) on the same table: batches of 1,000 old DONE
jobs, five per pass, at most a fifth of its time spent pruning.
"""

from __future__ import annotations

import threading
import time

from jobsvc.models import JobStatus
from jobsvc.store import Succeeded
from jobsvc.store.housekeeping import HousekeepingStore
from jobsvc.store.schedules import ScheduleStore
from worker.events import Events
from worker.housekeeping import Retention

from ..report import median
from ..seed import bulk_rows, enqueue_noops
from ..verify import done_exactly_once
from . import LEASE_SECONDS, QUEUES, Run

BATCH = 100
WORKER_ID = "bench-w7"
FINISHED_AGO_SECONDS = 8 * 86_400.0
RETAIN_SECONDS = 7 * 86_400.0  # JOBSVC_RETAIN_DONE_SECONDS's default


def run(bench: Run) -> None:
    """Drain with 0, then more finished rows; the last size again with pruning running.

    The empty table is measured first and last, and the faster of the two is the baseline of
    the ratios: this machine's speed drifts within minutes, and a drift must not flatter them.
    """
    sizes = bench.sizes
    first = _measure(bench, 0, pruning=False)
    rates = {}
    for finished in sizes.w7_finished:
        rates[f"{finished:,} finished rows"] = _measure(bench, finished, pruning=False)
    finished = sizes.w7_finished[-1]
    rates[f"{finished:,} finished rows + pruning"] = _measure(
        bench, finished, pruning=True, seeded=True
    )
    empty = max(first, _measure(bench, 0, pruning=False))
    for case, rate in rates.items():
        bench.add("W7", f"{case} / empty (the faster of two)", "drain rate", rate / empty, "x")


def _measure(bench: Run, finished: int, *, pruning: bool, seeded: bool = False) -> float:
    if not seeded:  # else on the table the case before left (its drained jobs now DONE too)
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
    before = store.count_prunable(JobStatus.DONE, RETAIN_SECONDS)
    retention = Retention(
        store,
        ScheduleStore(bench.database.engine),
        Events(WORKER_ID),
        {JobStatus.DONE: RETAIN_SECONDS},
    )
    while not stop.is_set():
        retention.run_due(time.monotonic())
        stop.wait(max(0.0, retention.next_due() - time.monotonic()))
    pruned[0] = before - store.count_prunable(JobStatus.DONE, RETAIN_SECONDS)
