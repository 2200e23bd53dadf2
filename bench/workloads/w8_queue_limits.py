"""W8: what queue limits cost the claim, for a limited queue and for an unlimited one.

W0's claim-and-complete loop through the store, on queue ``default``, under each setting: no
limits anywhere (the claim of before queues existed), another queue limited (``default`` still
takes the one-statement claim), and ``default`` itself under a concurrency limit, a rate limit
or both, set high enough never to hold a job back (what is measured is the locked path's cost).
Then what ``GET /queues`` and ``GET /queues/{name}`` cost (``QueueStore.list`` and ``get``)
with a small backlog, with many finished rows, and with a huge backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jobsvc.store import QueueStore, RateLimit

from ..report import median
from ..seed import bulk_rows, enqueue_noops
from ..verify import done_exactly_once
from . import Run
from .w0_ceiling import BATCH, _drain, _store_cycle

HIGH_CONCURRENCY = 100_000
HIGH_RATE = RateLimit(1_000_000, 1.0)
STATS_READS = 9  # reads per case; the median is reported

Setting = Callable[[QueueStore], None]
CASES: tuple[tuple[str, Setting], ...] = (
    ("no limits", lambda queues: None),
    ("another queue limited", lambda queues: queues.configure("other", concurrency=1)),
    ("concurrency limit", lambda queues: queues.configure("default", concurrency=HIGH_CONCURRENCY)),
    ("rate limit", lambda queues: queues.configure("default", rate_limit=HIGH_RATE)),
    (
        "both limits",
        lambda queues: queues.configure(
            "default", concurrency=HIGH_CONCURRENCY, rate_limit=HIGH_RATE
        ),
    ),
)


def run(bench: Run) -> None:
    """Measure claim + complete rate under each queue setting, 1 and 100 jobs per claim."""
    queues = QueueStore(bench.database.engine)
    store = bench.lease_store()
    for per_transaction, count in (
        (1, bench.sizes.w0_single_jobs),
        (BATCH, bench.sizes.w0_batch_jobs),
    ):
        for label, setting in CASES:
            bench.database.reset()
            _clear(queues)
            setting(queues)
            store.forget_queue_limits()
            ids = set(enqueue_noops(bench.database, count))
            elapsed, done = _drain(_store_cycle(bench), per_transaction, count)
            done_exactly_once(bench.database, done, f"W8 {label}")
            if set(done) != ids:
                raise AssertionError(f"W8 {label}: drained {len(done)} of {len(ids)} jobs")
            bench.add(
                "W8", f"{label}, {per_transaction} job/tx", "jobs/s", len(done) / elapsed, "jobs/s"
            )
    _clear(queues)
    _statistics(bench, queues)


def _statistics(bench: Run, queues: QueueStore) -> None:
    sizes = bench.sizes
    for ready, finished in (
        (sizes.w4_ready_small, 0),
        (sizes.w4_ready_small, sizes.w4_finished),
        (sizes.w4_ready_large, sizes.w4_finished),
    ):
        bench.database.reset()
        if finished:
            bulk_rows(bench.database, finished, finished=True)
        bulk_rows(bench.database, ready, finished=False)
        case = f"{ready:,} ready + {finished:,} done"
        for label, read in (("list", queues.list), ("get", lambda: queues.get("default"))):
            took: list[float] = []
            for _ in range(STATS_READS):
                start = time.perf_counter()
                read()
                took.append(1000 * (time.perf_counter() - start))
            bench.add("W8", f"queue statistics ({label}), {case}", "median", median(took), "ms")


def _clear(queues: QueueStore) -> None:
    for name in ("default", "other"):
        queues.configure(name, concurrency=None, rate_limit=None)
