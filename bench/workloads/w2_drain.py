"""W2: a pre-enqueued backlog of no-op jobs drained by real worker processes."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from jobsvc.models import Job

from ..report import median
from ..seed import enqueue_noops
from ..services import Services, peak_rss_mib
from ..verify import done_exactly_once
from . import Run

MEMORY_CONCURRENCY = 8  # the worker whose peak RSS the memory target is about
POLL_SECONDS = 0.25
DRAIN_TIMEOUT_SECONDS = 600.0

jobs = Job.__table__


def run(bench: Run) -> None:
    """Measure jobs/s from the first claim to the last completion, per workers x concurrency."""
    for workers in bench.sizes.w2_workers:
        best = 0.0
        for concurrency in bench.sizes.w2_concurrency:
            rates = [
                _drain_once(bench, workers, concurrency) for _ in range(bench.sizes.w2_repeats)
            ]
            case = f"{bench.sizes.w2_jobs:,} no-op jobs, {workers} worker(s) x {concurrency}"
            bench.add("W2", case, f"jobs/s median/{len(rates)}", median(rates), "jobs/s")
            if len(rates) > 1:
                bench.add("W2", case, "jobs/s min", min(rates), "jobs/s")
                bench.add("W2", case, "jobs/s max", max(rates), "jobs/s")
            best = max(best, median(rates))
        bench.add("W2", f"{workers} worker(s), best concurrency", "jobs/s", best, "jobs/s")


def _drain_once(bench: Run, workers: int, concurrency: int) -> float:
    bench.database.reset()
    count = bench.sizes.w2_jobs
    ids = enqueue_noops(bench.database, count)
    with Services(bench.database.url, bench.log_dir) as services:
        children = [services.start_worker(concurrency) for _ in range(workers)]
        _wait_done(bench, count, children)
        if workers == 1 and concurrency == MEMORY_CONCURRENCY and not bench.measured_memory:
            bench.measured_memory = True
            bench.add(
                "Mem",
                f"worker --concurrency {concurrency} during W2",
                "peak RSS",
                peak_rss_mib(children[0].pid),
                "MiB",
            )
    done_exactly_once(bench.database, ids, f"W2 {workers}x{concurrency}")
    return count / _finish_span(bench)


def _finish_span(bench: Run) -> float:
    """Return the seconds from the first claim to the last completion."""
    with bench.database.engine.connect() as connection:
        first, last = connection.execute(
            select(func.min(jobs.c.started_at), func.max(jobs.c.finished_at))
        ).one()
    return max((last - first).total_seconds(), 1e-6)


def _wait_done(bench: Run, count: int, children: list) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    done_query = text("SELECT count(*) FROM jobs WHERE status = 'DONE'")
    while time.monotonic() < deadline:
        with bench.database.engine.connect() as connection:
            if connection.execute(done_query).scalar_one() >= count:
                return
        if any(child.poll() is not None for child in children):
            raise RuntimeError(f"a worker exited early; see {bench.log_dir}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"W2: {count} jobs not drained in {DRAIN_TIMEOUT_SECONDS}s")
