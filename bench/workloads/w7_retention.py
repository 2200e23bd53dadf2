"""W7: the drain rate as finished rows pile up, and while retention deletes them.

Each case drains an empty table and one seeded with ``finished`` DONE rows (finished eight days
ago, past the default seven-day retention, by set-based SQL) in turn, round by round, on two
databases, and reports the ratio of each round. A drain claims 100 jobs per transaction and
completes them, as a worker's hot loop does, so the drained jobs become finished rows too. The
last size is drained again while a thread runs the workers' own retention chore
(``worker.housekeeping.Retention``) on the full table: batches of 1,000 old DONE jobs, five per
pass, at most a fifth of its time spent pruning.

Where the server runs with ``autovacuum = off`` (the shared test server here does), a thread
does what autovacuum would do with migration 0002's settings for the jobs table: a plain
``VACUUM jobs`` (cost delay 1 ms) whenever its dead rows pass 50 + 2 % of its rows. Without
it no case measures a table as PostgreSQL keeps it, only one that nothing ever cleans.
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

from ..databases import bench_database
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
VACUUM_COST_DELAY_MS = 1  # migration 0002's autovacuum_vacuum_cost_delay for jobs
_DEAD = text(
    "SELECT n_dead_tup, greatest(reltuples, 0) FROM pg_stat_user_tables s "
    "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'jobs'"
)


def run(bench: Run) -> None:
    """Drain an empty table and one with finished rows in turn, round by round."""
    with bench_database(bench.backend, bench.database.url, bench.log_dir) as empty_database:
        empty = Run(empty_database, bench.sizes, bench.report, bench.log_dir)
        try:
            for finished in bench.sizes.w7_finished:
                _compare(bench, empty, finished, pruning=False)
            _compare(bench, empty, bench.sizes.w7_finished[-1], pruning=True)
        finally:
            empty.close()


def _compare(bench: Run, empty: Run, finished: int, *, pruning: bool) -> None:
    """Alternate drains of ``empty`` and of ``bench`` with ``finished`` rows; report the ratio.

    Interleaved: this machine's speed drifts by 2-3x within minutes, which would swamp a
    comparison of cases measured one after the other.
    """
    if not pruning:  # with pruning: on the table the case before left
        for run in (empty, bench):
            run.database.reset()
        bulk_rows(
            bench.database, finished, finished=True, finished_ago_seconds=FINISHED_AGO_SECONDS
        )
    stop = threading.Event()
    helpers = []
    for run in (empty, bench):
        _drain(run)  # warm the caches and the connection pool; not counted
        if run.backend == "postgresql" and _autovacuum_off(run):
            helpers.append(threading.Thread(target=_vacuum, args=(run, stop), daemon=True))
    pruned = [0]
    if pruning:
        helpers.append(threading.Thread(target=_prune, args=(bench, stop, pruned), daemon=True))
    for helper in helpers:
        helper.start()
    rates: dict[str, list[float]] = {"empty": [], "full": []}
    try:
        for _ in range(bench.sizes.w7_rounds):
            rates["empty"].append(_drain(empty))
            rates["full"].append(_drain(bench))
    finally:
        stop.set()
        for helper in helpers:
            helper.join()
    case = f"{bench.sizes.w7_ready:,} jobs, {finished:,} finished rows"
    if pruning:
        case += f" + pruning ({pruned[0]:,} deleted meanwhile)"
    rounds = len(rates["full"])
    bench.add("W7", case, f"drain (100/tx) median/{rounds}", median(rates["full"]), "jobs/s")
    bench.add("W7", case, "empty table, same rounds", median(rates["empty"]), "jobs/s")
    ratios = [full / alone for full, alone in zip(rates["full"], rates["empty"], strict=True)]
    bench.add("W7", case, f"/ empty, median of {rounds} round ratios", median(ratios), "x")


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
        # Throttled as migration 0002 throttles autovacuum on jobs (a manual VACUUM is not).
        connection.execute(text(f"SET vacuum_cost_delay = {VACUUM_COST_DELAY_MS}"))
        while not stop.wait(VACUUM_CHECK_SECONDS):
            dead, rows = connection.execute(_DEAD).one()
            if dead > VACUUM_THRESHOLD_ROWS + VACUUM_SCALE_FACTOR * rows:
                connection.execute(text("VACUUM jobs"))
