"""Scenario 6: many jobs that fail together are not retried in lock step: full jitter spreads
their retries over the whole backoff window."""

from __future__ import annotations

import statistics
from collections import defaultdict

from tests.support.settings import slow_e2e_backends

from .scenario import starts
from .service import FaultService, size

# Real worker processes; what differs by backend is the store, which the fast tests
# cover on both: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("postgresql")

JOBS = size(200, 1000)
BASE_SECONDS = size(2.0, 4.0)  # the first retry waits uniformly in [0, base]
BINS = 10
BIN_SHARE_MAX = 0.25  # uniform gives each tenth of the window ~0.10; lock step puts all in one
SPREAD_MIN = 0.5  # the middle 80% of retries must span at least half the window


def test_jobs_failing_together_retry_spread_over_the_window(faulty: FaultService) -> None:
    faulty.start_api()
    ids = faulty.enqueue(
        [
            {"type": "test.flaky", "payload": {"succeed_on": 2}, "max_attempts": 2}
            for _ in range(JOBS)
        ]
    )
    env = {"JOBSVC_RETRY_BASE_SECONDS": str(BASE_SECONDS), "JOBSVC_RETRY_MAX_SECONDS": "600"}
    for _ in range(2):
        faulty.start_worker("--concurrency", "8", **env)
    faulty.wait_settled(120)

    waits = _retry_waits(faulty.executions())
    assert len(waits) == len(ids)
    histogram = [0] * (BINS + 1)  # the last bin: later than the window (queueing)
    for wait in waits:
        histogram[min(int(wait / BASE_SECONDS * BINS), BINS)] += 1
    deciles = statistics.quantiles(waits, n=10)
    spread = (deciles[-1] - deciles[0]) / BASE_SECONDS
    print(
        f"[faults] retry_storm waits over [0, {BASE_SECONDS}]s in tenths (+late): {histogram}; "
        f"p10={deciles[0]:.2f}s p50={deciles[4]:.2f}s p90={deciles[-1]:.2f}s "
        f"stdev={statistics.stdev(waits):.2f}s"
    )
    assert max(histogram) <= BIN_SHARE_MAX * len(waits), histogram
    assert spread >= SPREAD_MIN, deciles
    assert all(status == "DONE" for status in faulty.statuses().values())
    faulty.check(
        "retry_storm", p10=round(deciles[0], 2), p90=round(deciles[-1], 2), histogram=histogram
    )


def _retry_waits(executions: list[dict]) -> list[float]:
    """Return, per job, seconds from the end of attempt 1 to the start of attempt 2."""
    by_job: dict[int, dict[int, float]] = defaultdict(dict)
    for line in executions:
        if line["event"] == "end" and line["attempt"] == 1:
            by_job[line["job_id"]]["failed"] = line["t"]
    for line in starts(executions, attempt=2):
        by_job[line["job_id"]]["retried"] = line["t"]
    return [times["retried"] - times["failed"] for times in by_job.values()]
