"""W8: what queue limits cost the claim, for a limited queue and for an unlimited one.

W0's claim-and-complete loop through the store, on queue ``default``, under each setting: no
limits anywhere (the claim of before queues existed), another queue limited (``default`` still
takes the one-statement claim), and ``default`` itself under a concurrency limit, a rate limit
or both, set high enough never to hold a job back (what is measured is the locked path's cost).
"""

from __future__ import annotations

from collections.abc import Callable

from jobsvc.store import QueueStore, RateLimit

from ..seed import enqueue_noops
from ..verify import done_exactly_once
from . import Run
from .w0_ceiling import BATCH, _drain, _store_cycle

HIGH_CONCURRENCY = 100_000
HIGH_RATE = RateLimit(1_000_000, 1.0)

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


def _clear(queues: QueueStore) -> None:
    for name in ("default", "other"):
        queues.configure(name, concurrency=None, rate_limit=None)
