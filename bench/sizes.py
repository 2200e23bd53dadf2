"""How big each workload is: the full run the targets are read from, and the CI smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Counts and rates for one run of the suite."""

    w0_single_jobs: int  # jobs claimed and completed one per transaction
    w0_batch_jobs: int  # jobs claimed and completed 100 per transaction
    w1_requests: int  # single POST /jobs (and trivial GETs) per case
    w1_batch_requests: int  # POST /jobs/batch requests per batch size
    w2_jobs: int
    w2_concurrency: tuple[int, ...]
    w2_repeats: int  # drains per configuration; the median is reported
    w3_jobs: int
    w3_rate_per_second: float
    w3_idle_seconds: float  # idle time over which the worker's CPU use is measured
    w4_ready_small: int
    w4_ready_large: int
    w4_finished: int
    w4_single_claims: int
    w4_batches: int
    w2_workers: tuple[int, ...] = (1, 2)  # worker processes per W2 configuration
    w5_jobs: int = 10_000  # jobs that each await 100 ms
    w6_jobs: int = 2000  # jobs of about 20 ms of pure-Python CPU each
    # W2P: no-op drains per pool; None is the pool's default --concurrency.
    w2p_concurrency: tuple[tuple[str, tuple[int | None, ...]], ...] = (
        ("threads", (None, 64)),
        ("processes", (None, 4)),
        ("asyncio", (None, 256)),
    )
    w2p_jobs: int = 10_000
    w9_waiters: int = 200  # requests waiting at once on one API process (?wait=)
    w9_posts: int = 500  # POST /jobs timed without and with the waiters
    w7_ready: int = 20_000  # jobs drained per round
    w7_finished: tuple[int, ...] = (300_000, 1_000_000)  # finished rows; the last with pruning
    w7_rounds: int = 5


FULL = Sizes(
    w0_single_jobs=3000,
    w0_batch_jobs=20_000,
    w1_requests=3000,
    w1_batch_requests=20,
    w2_jobs=20_000,
    w2_concurrency=(1, 8, 16, 32, 64, 128, 256),
    w2_repeats=3,
    w3_jobs=200,
    w3_rate_per_second=20.0,
    w3_idle_seconds=3.0,
    w4_ready_small=1000,
    w4_ready_large=1_000_000,
    w4_finished=500_000,
    w4_single_claims=200,
    w4_batches=5,
)

SMALL = Sizes(
    w0_single_jobs=200,
    w0_batch_jobs=1000,
    w1_requests=100,
    w1_batch_requests=2,
    w2_jobs=1000,
    w2_concurrency=(8,),
    w2_repeats=1,
    w3_jobs=10,
    w3_rate_per_second=20.0,
    w3_idle_seconds=0.5,
    w4_ready_small=1000,
    w4_ready_large=10_000,
    w4_finished=5000,
    w4_single_claims=50,
    w4_batches=3,
    w5_jobs=500,
    w6_jobs=40,
    w2p_concurrency=(("threads", (None,)), ("processes", (None,)), ("asyncio", (None,))),
    w2p_jobs=500,
    w9_waiters=20,
    w9_posts=50,
    w7_ready=1000,
    w7_finished=(3000, 10_000),
    w7_rounds=2,
)
