"""W5, W6 and W2P: one worker process draining a backlog under each execution pool.

- W5, I/O-bound: jobs that each await 100 ms (``asyncio.sleep``); the asyncio pool beside the
  threads pool at --concurrency 256.
- W6, CPU-bound: jobs of about 20 ms of pure-Python CPU; the processes pool with 2 children
  beside the threads pool (one GIL: its concurrency does not matter).
- W2P: no-op jobs at each pool's default --concurrency and a few others.
"""

from __future__ import annotations

from jobsvc.store import NewJob

from ..report import median
from ..seed import enqueue_noops
from ..services import Services
from ..verify import done_exactly_once
from . import Run
from .w2_drain import _finish_span, _wait_done

IO_SECONDS = 0.1
CPU_LOOPS = 250_000  # about 20 ms of CPU per job on the development machine
W5_CASES = (("asyncio", 1000), ("threads", 256))
# (label, pool, --concurrency, more flags): the processes pool also without its prefetch, which
# is how it ran before it had one.
W6_CASES = (
    ("processes", "processes", 2, ()),
    ("no prefetch", "processes", 2, ("--prefetch", "0")),
    ("threads", "threads", None, ()),
)
ASYNC_ONLY = ("--handlers", "bench.async_handlers")  # the asyncio pool refuses plain handlers


def _job(job_type: str, payload: dict) -> NewJob:
    return NewJob(type=job_type, payload=payload, queue="default", priority=0, max_attempts=3)


def _drain(
    bench: Run,
    job: NewJob,
    count: int,
    pool: str,
    concurrency: int | None,
    more: tuple[str, ...] = (),
) -> float:
    """Drain ``count`` copies of ``job`` with one worker; return jobs/s (first claim to last
    completion)."""
    bench.database.reset()
    ids = enqueue_noops(bench.database, count, job)
    flags = ["--pool", pool, *(ASYNC_ONLY if pool == "asyncio" else ()), *more]
    with Services(bench.database.url, bench.log_dir) as services:
        child = services.start_worker(concurrency, *flags)
        _wait_done(bench, count, [child])
    done_exactly_once(bench.database, ids, f"{job.type} --pool {pool} x{concurrency}")
    return count / _finish_span(bench)


def _label(pool: str, concurrency: int | None) -> str:
    return f"--pool {pool} " + (
        "(default concurrency)" if concurrency is None else f"x{concurrency}"
    )


def run_w5(bench: Run) -> None:
    """I/O-bound: jobs awaiting 100 ms each."""
    job = _job("io_wait", {"seconds": IO_SECONDS})
    for pool, concurrency in W5_CASES:
        rate = _drain(bench, job, bench.sizes.w5_jobs, pool, concurrency)
        case = (
            f"{bench.sizes.w5_jobs:,} jobs awaiting 100 ms, 1 worker, {_label(pool, concurrency)}"
        )
        bench.add("W5", case, "jobs/s", rate, "jobs/s")


def run_w6(bench: Run) -> None:
    """CPU-bound: jobs of about 20 ms of pure-Python CPU each.

    The cases alternate, ``w2_repeats`` rounds, and each speed-up is the median of the rounds'
    ratios: this machine's speed drifts more within minutes than the effects measured.
    """
    job = _job("cpu", {"loops": CPU_LOOPS})
    rates: dict[str, list[float]] = {label: [] for label, *_ in W6_CASES}
    for _ in range(bench.sizes.w2_repeats):
        for label, pool, concurrency, more in W6_CASES:
            rate = _drain(bench, job, bench.sizes.w6_jobs, pool, concurrency, more)
            rates[label].append(rate)
    for label, pool, concurrency, more in W6_CASES:
        flags = " ".join((_label(pool, concurrency), *more))
        case = f"{bench.sizes.w6_jobs:,} jobs of ~20 ms CPU, 1 worker, {flags}"
        metric = f"jobs/s median/{len(rates[label])}"
        bench.add("W6", case, metric, median(rates[label]), "jobs/s")
    for label in ("processes", "no prefetch"):
        ratios = [p / t for p, t in zip(rates[label], rates["threads"], strict=True)]
        case = f"{label} x2 / threads, interleaved"
        bench.add("W6", case, f"speed-up median/{len(ratios)}", median(ratios), "x")


def run_w2p(bench: Run) -> None:
    """No-op jobs under each pool, at its default concurrency and a few others."""
    for pool, concurrencies in bench.sizes.w2p_concurrency:
        job = _job("anoop" if pool == "asyncio" else "noop", {})
        best = 0.0
        for concurrency in concurrencies:
            rates = [
                _drain(bench, job, bench.sizes.w2p_jobs, pool, concurrency)
                for _ in range(bench.sizes.w2_repeats)
            ]
            case = f"{bench.sizes.w2p_jobs:,} no-op jobs, 1 worker, {_label(pool, concurrency)}"
            bench.add("W2P", case, f"jobs/s median/{len(rates)}", median(rates), "jobs/s")
            best = max(best, median(rates))
        bench.add("W2P", f"--pool {pool}, best concurrency", "jobs/s", best, "jobs/s")
