"""W4: claim cost and drain rate with a small and a huge backlog (plus many finished rows)."""

from __future__ import annotations

import time

from jobsvc.store import Succeeded

from ..report import median
from ..seed import bulk_rows
from ..verify import done_exactly_once
from . import LEASE_SECONDS, QUEUES, Run

BATCH = 100
WORKER_ID = "bench-w4"


def run(bench: Run) -> None:
    """Compare claims with the small and the large backlog; report the ratio."""
    sizes = bench.sizes
    small = _measure(bench, sizes.w4_ready_small, 0, f"{sizes.w4_ready_small:,} ready")
    large_case = f"{sizes.w4_ready_large:,} ready + {sizes.w4_finished:,} done"
    large = _measure(bench, sizes.w4_ready_large, sizes.w4_finished, large_case)
    for queues in ("default", "*"):
        bench.add(
            "W4", f"large / small, queue {queues}", "claim cost", large[queues] / small[queues], "x"
        )


def _measure(bench: Run, ready: int, finished: int, case: str) -> dict[str, float]:
    bench.database.reset()
    if finished:
        bulk_rows(bench.database, finished, finished=True)
    bulk_rows(bench.database, ready, finished=False)
    store = bench.lease_store()
    done: list[int] = []
    costs: dict[str, float] = {}
    for label, queues in (("default", QUEUES), ("*", None)):
        claim_ms: list[float] = []
        for _ in range(bench.sizes.w4_single_claims):
            start = time.perf_counter()
            claimed = store.claim(queues, 1, WORKER_ID, LEASE_SECONDS)
            claim_ms.append(1000 * (time.perf_counter() - start))
            store.finish([Succeeded(job.lease, None) for job in claimed])
            done.extend(job.id for job in claimed)
        costs[label] = median(claim_ms)
        bench.add("W4", f"{case}, queue {label}", "claim 1 median", costs[label], "ms")
    start = time.perf_counter()
    drained = 0
    for _ in range(bench.sizes.w4_batches):
        claimed = store.claim(QUEUES, BATCH, WORKER_ID, LEASE_SECONDS)
        store.finish([Succeeded(job.lease, None) for job in claimed])
        done.extend(job.id for job in claimed)
        drained += len(claimed)
    bench.add("W4", case, "drain (100/tx)", drained / (time.perf_counter() - start), "jobs/s")
    done_exactly_once(bench.database, done, f"W4 {case}")
    return costs
