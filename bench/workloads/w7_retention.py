"""W7: the drain rate as finished rows pile up, and while retention deletes them.

Each case seeds ``finished`` DONE rows (finished eight days ago, past the default seven-day
retention) with set-based SQL, then drains a backlog of no-op jobs as a worker's hot loop does
(claim 100 per transaction, complete them), several times over, so the drained jobs become
finished rows too. The last size is drained again while a thread runs the workers' own
retention chore (``worker.housekeeping.Retention``) on the same table: batches of 1,000 old DONE
jobs, five per pass, at most a fifth of its time spent pruning.

Where the server runs with ``autovacuum = off`` (the shared test server here does), a thread
does what autovacuum would do with migration 0002's settings for the jobs table: a plain
``VACUUM jobs`` whenever its dead rows pass 50 + 2 % of its rows. Without it no case measures
a table as PostgreSQL keeps it, only one that nothing ever cleans.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

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
VACUUM_CHECK_SECONDS = 1.0  # autovacuum's own naptime is a minute, for every table it watches
VACUUM_THRESHOLD_ROWS = 50  # autovacuum_vacuum_threshold's default
VACUUM_SCALE_FACTOR = 0.02  # migration 0002's autovacuum_vacuum_scale_factor for jobs
_DEAD = text(
    "SELECT n_dead_tup, greatest(reltuples, 0) FROM pg_stat_user_tables s "
    "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'jobs'"
)


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
    vacuumer = threading.Thread(target=_vacuum, args=(bench, stop), daemon=True)
    if bench.backend == "postgresql" and _autovacuum_off(bench):
        vacuumer.start()
    rates = []
    try:
        for _ in range(bench.sizes.w7_rounds):
            rates.append(_drain(bench))
    finally:
        stop.set()
        if pruning:
            pruner.join()
        if vacuumer.is_alive():
            vacuumer.join()
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


def _autovacuum_off(bench: Run) -> bool:
    with bench.database.engine.connect() as connection:
        return connection.execute(text("SHOW autovacuum")).scalar_one() == "off"


def _vacuum(bench: Run, stop: threading.Event) -> None:
    with bench.database.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        while not stop.wait(VACUUM_CHECK_SECONDS):
            dead, rows = connection.execute(_DEAD).one()
            if dead > VACUUM_THRESHOLD_ROWS + VACUUM_SCALE_FACTOR * rows:
                connection.execute(text("VACUUM jobs"))
